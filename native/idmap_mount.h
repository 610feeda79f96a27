#pragma once
#include <string>

namespace nstool {

// Clones the mount tree at SOURCE (open_tree OPEN_TREE_CLONE), marks it
// idmapped with the user namespace at USERNS (mount_setattr MOUNT_ATTR_IDMAP)
// and attaches it at TARGET (move_mount). Files owned by host uid U appear
// owned by the uid U maps to in that userns' map, and writes through the
// mount land with the reverse mapping. READONLY, NOSUID and NODEV set the
// mount attributes of the same names. Undo with Unmount(TARGET).
void IdmapMount(const std::string& source, const std::string& target,
                const std::string& userns, bool recursive, bool readonly, bool nosuid,
                bool nodev);

}  // namespace nstool
