#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace nstool {

// How a path inside a root is resolved. kAuto is openat2(RESOLVE_IN_ROOT),
// or the O_PATH walk where the kernel or a seccomp filter lacks openat2.
// The other two force one method (tests compare them).
enum class ResolveHow { kAuto, kOpenat2, kWalk };

struct RootFile {
  bool found = false;  // false: a component is missing or not a directory
  uint32_t mode = 0;   // st_mode of what PATH names
  uint64_t size = 0;   // its st_size
  bool read = false;   // a regular file of at most max_bytes: data holds it
  std::string data;
};

// Reads PATH as if ROOT were "/": symlinks (absolute or with "..") never
// lead out of ROOT, and procfs magic links are refused. ROOT itself is
// opened as given (symlinks followed: it comes from the caller). What PATH
// names is first opened O_PATH and only reopened for reading when it is a
// regular file, so a device or fifo placed there is never opened.
RootFile ReadInRoot(const std::string& root, const std::string& path, size_t max_bytes,
                    ResolveHow how);

}  // namespace nstool
