// The runner's two kinds of expected failure. main() turns either into one
// {"event":"error",...} line and a non-zero exit status; nothing expected aborts.
#pragma once

#include <string>

namespace mobilebench {

// A bad command line (exit status 2). The message names the flag.
struct UsageError {
  std::string message;
};

// The model, an input or an output file could not be used, or ExecuTorch reported an
// error (exit status 1). The message says what failed and, where it can, what to do.
struct RunError {
  std::string message;
  int model = -1;  // with --interleave: the index of the --model that failed
};

inline constexpr int kExitRunError = 1;
inline constexpr int kExitUsageError = 2;

}  // namespace mobilebench
