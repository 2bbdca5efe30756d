// Size of ExecuTorch's shared thread pool, which XNNPACK and the optimized CPU kernels use.
#pragma once

#include <cstddef>

namespace mobilebench {

// Resizes the pool to `threads` (1 = the calling thread only, no worker threads) and
// returns the size the pool reports afterwards. Must run before the program is loaded:
// the XNNPACK delegate takes the pool when it builds its runtime. Throws RunError.
size_t set_threadpool_size(size_t threads);

}  // namespace mobilebench
