#pragma once
#include <string>

namespace nstool {

// Mounts an overlayfs at TARGET with the one LOWER layer, UPPER and WORK
// (fsopen + fsconfig + fsmount + move_mount), with MOUNT_ATTR_NOSUID and
// MOUNT_ATTR_NODEV when asked. The paths go to the kernel as they are: the
// caller refuses the characters overlayfs parses (',' ':' '\'). Undo with
// Unmount(TARGET).
void OverlayMount(const std::string& lower, const std::string& upper, const std::string& work,
                  const std::string& target, bool nosuid, bool nodev);

// rename(2) that fails with EEXIST instead of replacing TO (renameat2
// RENAME_NOREPLACE): an empty directory at TO is never swallowed.
void RenameNoReplace(const std::string& from, const std::string& to);

}  // namespace nstool
