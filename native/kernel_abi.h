// Kernel interfaces newer than some distributions' headers: constants and
// structs spelled out once, each only where the headers lack it.
#ifndef NSTOOL_KERNEL_ABI_H_
#define NSTOOL_KERNEL_ABI_H_

#include <cstdint>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

namespace nstool {

// struct mount_attr (mount_setattr(2)).
struct MountAttr {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

}  // namespace nstool

#endif  // NSTOOL_KERNEL_ABI_H_
