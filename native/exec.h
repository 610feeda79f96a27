#pragma once
#include <string>
#include <vector>

namespace nstool {

struct ExecParams {
  std::string netns;       // namespace files to join; empty = stay
  std::string userns;
  bool owner_userns = false;  // join the userns that owns NETNS (NS_GET_USERNS)
  bool become_root = true; // setresuid/gid(0) after joining the userns
  std::string file;        // absolute path of the program
  std::vector<std::string> argv, envp;
  std::string cwd;         // empty = inherit
  int stdio[3] = {-1, -1, -1};  // fd to hand over as 0/1/2; -1 = pipe
  std::string input;       // written to the stdin pipe, then closed
  int timeout_ms = 0;      // 0 = none; then SIGKILL
  size_t max_output = 64 << 20;
};

struct ExecResult {
  int pid = 0;
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string out, err;
};

// fork + setns + execve from a child process: namespaces are per thread and
// must never be entered on a Node thread. The child keeps only fds 0, 1, 2.
ExecResult ExecIn(const ExecParams& p);

}  // namespace nstool
