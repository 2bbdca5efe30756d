#include "input_data.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

#include "runner_error.h"

namespace mobilebench {

void fill_fixed_input(uint32_t seed, std::vector<float>& values) {
  const uint32_t key = lowbias32(seed ^ 0x9e3779b9U);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint32_t u = lowbias32(lowbias32(static_cast<uint32_t>(i)) ^ key);
    // 24 random bits scaled to [0, 2) and shifted: every step is exact in float32.
    values[i] = static_cast<float>(u >> 8) * (1.0f / 8388608.0f) - 1.0f;
  }
}

std::vector<float> read_float32_file(const std::string& path, size_t count,
                                     const std::string& what) {
  static_assert(sizeof(float) == 4, "float32 expected");
  // Both targets (x86-64, arm64 Android) are little-endian, so the bytes are the values.
  const size_t expected_bytes = count * sizeof(float);
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    throw RunError{"cannot read input file " + path + ": " + std::strerror(errno)};
  }
  if (!S_ISREG(info.st_mode)) throw RunError{"input file " + path + " is not a regular file"};
  if (static_cast<size_t>(info.st_size) != expected_bytes) {
    throw RunError{"input file " + path + " has " + std::to_string(info.st_size) + " bytes; " +
                   what + " needs " + std::to_string(expected_bytes) +
                   " bytes (" + std::to_string(count) + " little-endian float32 values)"};
  }
  std::vector<float> values(count);
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw RunError{"cannot open input file " + path + ": " + std::strerror(errno)};
  const size_t read = count ? std::fread(values.data(), sizeof(float), count, file) : 0;
  std::fclose(file);
  if (read != count) throw RunError{"short read from input file " + path};
  return values;
}

}  // namespace mobilebench
