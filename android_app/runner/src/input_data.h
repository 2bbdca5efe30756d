// Input tensors' data: generated deterministically from --seed, or read from --input files.
//
// The generator is SplitMix64 (Steele, Lea & Flood 2014) seeded with --seed; element e of
// the stream is ((z_e >> 40) * 2^-24) * 2 - 1, a float32 uniform in [-1, 1) with 24 bits of
// resolution (computed exactly, no rounding), where z_e is the e-th SplitMix64 output. The
// stream fills input 0 in memory (row-major) order, then continues into input 1, and so on.
// A few lines of numpy reproduce it bit for bit (see tests/runner/).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mobilebench {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform float32 in [-1, 1): 24 random bits, exactly representable.
  float next_symmetric_unit() {
    const double unit = static_cast<double>(next() >> 40) * (1.0 / 16777216.0);
    return static_cast<float>(unit * 2.0 - 1.0);
  }

 private:
  uint64_t state_;
};

void fill_uniform(SplitMix64& generator, std::vector<float>& values);

// Reads exactly `count` little-endian float32 values from `path`; throws RunError naming
// the expected and actual byte sizes when the file is missing or has the wrong size.
std::vector<float> read_float32_file(const std::string& path, size_t count,
                                     const std::string& what);

}  // namespace mobilebench
