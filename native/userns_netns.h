#pragma once
#include <cstdint>
#include <string>

namespace nstool {

struct CreateParams {
  std::string uid_map;    // kernel format, "inside outside count\n" lines
  std::string gid_map;
  std::string setgroups;  // "allow", "deny" or "" (leave the kernel default)
  std::string netns_pin;  // required
  std::string userns_pin; // optional
};

struct NsId {
  uint64_t ino = 0;
  uint64_t dev = 0;
};

struct CreateResult {
  NsId netns;
  NsId userns;
  uint64_t userns_id = 0;  // NS_GET_ID of the userns; 0 before Linux 6.18
};

// Creates a user namespace and a network namespace owned by it in a helper
// child, writes the maps from here, pins, then kills and reaps the helper.
// On any failure nothing is left pinned and the helper is reaped.
CreateResult CreateUsernsNetns(const CreateParams& p);

}  // namespace nstool
