// Input tensors' data: generated deterministically from --seed, or read from --input files.
//
// The generator is mobilebench's fixed input (mobilebench/export/inputs.py), so
// `--seed S` feeds exactly what `mobilebench.export.fixed_input(shape, S)` returns in
// Python, bit for bit. For element index i (row-major over the shape):
//     key  = lowbias32(seed ^ 0x9e3779b9)
//     u    = lowbias32(lowbias32(i) ^ key)          (uint32, wrapping)
//     x[i] = float32(u >> 8) * 2^-23 - 1            (exact; uniform in [-1, 1))
// with lowbias32 Chris Wellons' integer hash. A program with several inputs gets input j
// from seed S + j (mod 2^32).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mobilebench {

inline uint32_t lowbias32(uint32_t v) {
  v ^= v >> 16;
  v *= 0x7feb352dU;
  v ^= v >> 15;
  v *= 0x846ca68bU;
  v ^= v >> 16;
  return v;
}

// Fills `values` (one tensor, row-major) with the fixed input of `seed`.
void fill_fixed_input(uint32_t seed, std::vector<float>& values);

// Reads exactly `count` little-endian float32 values from `path`; throws RunError naming
// the expected and actual byte sizes when the file is missing or has the wrong size.
std::vector<float> read_float32_file(const std::string& path, size_t count,
                                     const std::string& what);

}  // namespace mobilebench
