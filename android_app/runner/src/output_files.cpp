#include "output_files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "runner_error.h"

namespace mobilebench {

void write_file_atomically(const std::string& path, const void* data, size_t size) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (!file) throw RunError{"cannot write " + path + ": " + std::strerror(errno)};
  const bool written = (size == 0 || std::fwrite(data, 1, size, file) == size);
  const int saved_errno = errno;
  const bool closed = (std::fclose(file) == 0);
  if (!written || !closed) {
    std::remove(temporary.c_str());
    throw RunError{"cannot write " + path + ": " + std::strerror(written ? errno : saved_errno)};
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int rename_errno = errno;
    std::remove(temporary.c_str());
    throw RunError{"cannot write " + path + ": " + std::strerror(rename_errno)};
  }
}

void check_writable_destination(const std::string& path, const std::string& flag) {
  const size_t slash = path.find_last_of('/');
  const std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (::access(directory.c_str(), W_OK | X_OK) != 0) {
    throw RunError{"cannot write " + path + " (" + flag + "): directory " + directory + ": " +
                   std::strerror(errno)};
  }
}

}  // namespace mobilebench
