#pragma once
#include <string>
#include <vector>

namespace nstool {

// One request to the keeper (native/keeper/nstool-keeper.cc) on its unix
// socket: REQUEST as one SOCK_SEQPACKET message carrying FDS (SCM_RIGHTS),
// then the one-message reply, then EOF (the keeper closes the connection
// after replying, or exits). Every step is bounded by TIMEOUT_MS. A
// connection closed before any reply is ECONNRESET: the request was never
// read, so the caller may send it again to another keeper.
std::string KeeperCall(const std::string& socket_path, const std::string& request,
                       const std::vector<int>& fds, int timeout_ms);

}  // namespace nstool
