#include "overlay_mount.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "errors.h"
#include "fd.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

namespace nstool {

void OverlayMount(const std::string& lower, const std::string& upper, const std::string& work,
                  const std::string& target, bool nosuid, bool nodev) {
  Fd fs(static_cast<int>(syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!fs.valid()) Throw("fsopen", "overlay");
  const std::pair<const char*, const std::string*> params[] = {
      {"lowerdir", &lower}, {"upperdir", &upper}, {"workdir", &work}};
  for (const auto& [key, value] : params) {
    if (syscall(SYS_fsconfig, fs.get(), FSCONFIG_SET_STRING, key, value->c_str(), 0) < 0)
      Throw("fsconfig", *value);
  }
  if (syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
    Throw("fsconfig", lower, errno, upper);
  // The attributes are part of the mount from its first moment.
  unsigned attrs = (nosuid ? MOUNT_ATTR_NOSUID : 0u) | (nodev ? MOUNT_ATTR_NODEV : 0u);
  Fd mnt(static_cast<int>(syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC, attrs)));
  if (!mnt.valid()) Throw("fsmount", lower);
  if (syscall(SYS_move_mount, mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    Throw("move_mount", lower, errno, target);
}

void RenameNoReplace(const std::string& from, const std::string& to) {
  if (syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) < 0)
    Throw("rename", from, errno, to);
}

}  // namespace nstool
