#pragma once
#include <cstdint>
#include <string>

namespace nstool {

struct NsInfo {
  bool nsfs = false;      // the file is a namespace (statfs NSFS_MAGIC)
  int type = 0;           // CLONE_NEW* from NS_GET_NSTYPE
  uint64_t ino = 0, dev = 0;
  bool has_owner = false; // owning userns could be read
  uint64_t owner_ino = 0, owner_dev = 0;
  uint32_t owner_uid = 0; // NS_GET_OWNER_UID of the owning userns
  // NS_GET_ID (Linux 6.18+): a 64-bit id the kernel never reuses, unlike
  // inode numbers; 0 where the kernel lacks the ioctl.
  uint64_t id = 0, owner_id = 0;
};

// NS_GET_ID of the namespace FD refers to, or 0 where the kernel lacks it.
uint64_t NsIdOf(int fd);

// Identifies the namespace at PATH. With nofollow, a symlink is refused
// (ELOOP) rather than followed: pin dirs are never trusted to hold links.
NsInfo InspectNs(const std::string& path, bool nofollow);

struct IdMaps {
  std::string uid_map, gid_map, setgroups;
};
// Reads the maps of the user namespace at PATH (a userns file, or any
// namespace whose owner is wanted). The kernel shows maps only through a
// process, so a forked child joins the userns and reads its own files.
IdMaps ReadIdMaps(const std::string& path, bool owner);

}  // namespace nstool
