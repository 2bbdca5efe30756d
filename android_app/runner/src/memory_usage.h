// What the process holds in memory, as the kernel counts it.
#pragma once

#include <cstdint>
#include <optional>

namespace mobilebench {

// The peak resident set size of this process so far, in bytes: VmHWM of
// /proc/self/status (Linux and Android), which counts every page the process has had
// resident at once -- the runtime's libraries, the loaded program, XNNPACK's packed
// weights, the planned buffers and the inputs. Nothing where /proc is unavailable.
std::optional<int64_t> peak_rss_bytes();

}  // namespace mobilebench
