#pragma once
#include <cstdint>
#include <string>

namespace nstool {

struct PodNsParams {
  std::string userns;    // the pod's user namespace (a pin), which will own them
  std::string ipc_pin;   // "": no ipc namespace
  std::string uts_pin;   // "": no uts namespace
  std::string hostname;  // set in the new uts namespace (at most 64 bytes)
  // Rootless: instead of being pinned here, each namespace goes to the
  // keeper on this socket with its request ("" for a kind not wanted).
  std::string keeper_sock;
  std::string ipc_request, uts_request;
  int timeout_ms = 10000;
};

struct PodNsResult {
  uint64_t ipc_ino = 0, ipc_dev = 0;  // 0 when not made
  uint64_t uts_ino = 0, uts_dev = 0;
  uint64_t userns_ino = 0, userns_dev = 0;  // their owner, as checked
  std::string ipc_reply, uts_reply;  // the keeper's, when it pinned them
};

// Makes an ipc and/or a uts namespace (those with a pin path; at least one)
// owned by the user namespace at USERNS, sets the host name in the uts one,
// and pins them (or hands them to the keeper, which does). A helper child joins the userns and unshares; the
// namespaces reach us through fds it opens in our fd table. On any failure
// nothing is left pinned and no fd is left open.
PodNsResult CreatePodNs(const PodNsParams& p);

}  // namespace nstool
