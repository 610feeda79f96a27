// Probes for `nstool features`: each asks the kernel itself, with calls
// that change nothing (arguments a present syscall must reject, detached
// mount trees, a short-lived child), never the kernel's version number.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace nstool {

// For each probed interface, 0 when the call worked or the errno it gave:
// a present syscall answers the bad argument (E2BIG, EINVAL, EBADF), an
// absent one ENOSYS, a filtered one (seccomp) usually EPERM or ENOSYS.
std::vector<std::pair<std::string, int>> ProbeSyscalls();

// A child (sharing nothing it could harm: signals blocked, raw syscalls
// only) drops to UID/GID with no groups when DROP, then unshares a user
// namespace. Returns the failed step ("" when it worked) and its errno.
struct UnprivResult {
  std::string step;
  int err = 0;
};
UnprivResult ProbeUnprivilegedUserns(unsigned uid, unsigned gid, bool drop);

// Clones the mount tree at PATH (open_tree, recursive, detached) and makes
// it read-only recursively (mount_setattr AT_RECURSIVE); the clone is never
// attached and dissolves when its fd closes. Throws on failure.
void ProbeRecursiveReadonly(const std::string& path);

// A small tmpfs (mode 0700, nosuid, nodev, noexec) at TARGET.
void MountTmpfs(const std::string& target);

}  // namespace nstool
