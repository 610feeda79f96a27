#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

namespace nstool {

struct CreateParams {
  std::string uid_map;    // kernel format, "inside outside count\n" lines
  std::string gid_map;
  std::string setgroups;  // "allow", "deny" or "" (leave the kernel default)
  std::string netns_pin;  // required
  std::string userns_pin; // optional
  std::string guard;      // optional: a path whose existence is reported once pinned
};

struct NsId {
  uint64_t ino = 0;
  uint64_t dev = 0;
};

struct CreateResult {
  NsId netns;
  NsId userns;
  uint64_t userns_id = 0;  // NS_GET_ID of the userns; 0 before Linux 6.18
  bool guarded = false;    // params.guard existed (access F_OK) after pinning
};

// Creates a user namespace and a network namespace owned by it in a helper
// child, writes the maps from here, pins, then kills and reaps the helper.
// On any failure nothing is left pinned and the helper is reaped.
CreateResult CreateUsernsNetns(const CreateParams& p);

// The same helper, held open for a caller without privilege over the host:
// its maps are written by someone else (newuidmap/newgidmap, given pid()) or
// through Write(), and the namespaces leave as fds (to a process that pins
// them) instead of as mounts. The destructor kills and reaps the helper and
// closes both fds, so dropping the object is the cleanup on every path.
class HeldNs {
 public:
  // clone(CLONE_VM|CLONE_NEWUSER|CLONE_NEWNET) + open of both namespaces;
  // no map is written.
  static std::unique_ptr<HeldNs> Start();
  ~HeldNs();
  HeldNs(const HeldNs&) = delete;
  HeldNs& operator=(const HeldNs&) = delete;

  pid_t pid() const;
  int netns_fd() const;
  int userns_fd() const;
  CreateResult ids() const;
  // One write() to /proc/<pid>/LEAF (uid_map, gid_map or setgroups).
  void Write(const std::string& leaf, const std::string& text) const;
  // /proc/<pid>/LEAF as the kernel shows it now.
  std::string Read(const std::string& leaf) const;

 private:
  struct Impl;
  explicit HeldNs(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nstool
