#include "memory_usage.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mobilebench {

std::optional<int64_t> peak_rss_bytes() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return std::nullopt;
  std::optional<int64_t> bytes;
  char line[256];
  while (std::fgets(line, sizeof(line), status) != nullptr) {
    // "VmHWM:\t   12345 kB"
    if (std::strncmp(line, "VmHWM:", 6) == 0) {
      char* end = nullptr;
      const long long kib = std::strtoll(line + 6, &end, 10);
      if (end != line + 6 && kib >= 0) bytes = static_cast<int64_t>(kib) * 1024;
      break;
    }
  }
  std::fclose(status);
  return bytes;
}

}  // namespace mobilebench
