#include "threadpool_control.h"

#include <cstdint>
#include <string>

#include "runner_error.h"

// The pip wheel ships libexecutorch_threadpool.so but not its header
// (extension/threadpool/threadpool.h, which also needs pthreadpool.h). These are the
// declarations of the two member functions and the accessor we call, as the library
// exports them; only pointers to the pool are ever used, so its layout does not matter.
namespace executorch::extension::threadpool {

class ThreadPool final {
 public:
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);

 private:
  ThreadPool() = default;
};

ThreadPool* get_threadpool();

}  // namespace executorch::extension::threadpool

namespace mobilebench {

size_t set_threadpool_size(size_t threads) {
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool == nullptr) throw RunError{"ExecuTorch's thread pool could not be created"};
  if (!pool->_unsafe_reset_threadpool(static_cast<uint32_t>(threads))) {
    throw RunError{"ExecuTorch's thread pool refused a size of " + std::to_string(threads)};
  }
  return pool->get_thread_count();
}

}  // namespace mobilebench
