#include "idmap_mount.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "errors.h"
#include "fd.h"
#include "kernel_abi.h"


namespace nstool {

void IdmapMount(const std::string& source, const std::string& target,
                const std::string& userns, bool recursive, bool readonly, bool nosuid,
                bool nodev) {
  Fd ns(open(userns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) Throw("open", userns);
  unsigned tree_flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  Fd tree(static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, source.c_str(), tree_flags)));
  if (!tree.valid()) Throw("open_tree", source);
  // Set in the same call as the idmap: the tree is never attached without them.
  uint64_t set = MOUNT_ATTR_IDMAP | (readonly ? MOUNT_ATTR_RDONLY : 0u) |
                 (nosuid ? MOUNT_ATTR_NOSUID : 0u) | (nodev ? MOUNT_ATTR_NODEV : 0u);
  MountAttr attr{set, 0, 0, static_cast<uint64_t>(ns.get())};
  if (syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0),
              &attr, sizeof attr) < 0)
    Throw("mount_setattr", source);
  if (syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    Throw("move_mount", source, errno, target);
}

}  // namespace nstool
