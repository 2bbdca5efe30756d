// Files the runner writes (--dump-output, --etdump): all or nothing.
#pragma once

#include <cstddef>
#include <string>

namespace mobilebench {

// Writes `size` bytes to `path` through a temporary file in the same directory and a
// rename, so a reader never sees a half-written file. Throws RunError on failure.
void write_file_atomically(const std::string& path, const void* data, size_t size);

// Checks up front that `path` can be written (its directory exists and is writable), so a
// long benchmark does not end in a failed write. `flag` names the option in the message.
void check_writable_destination(const std::string& path, const std::string& flag);

}  // namespace mobilebench
