#include "exec.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "fd.h"

namespace nstool {

namespace {

// Where the child failed, reported to the parent over a CLOEXEC pipe: a
// successful execve closes it with nothing written.
struct ChildReport {
  int step;
  int err;
};
const char* const kSteps[] = {"setns", "setns", "setgroups", "setresgid", "setresuid",
                              "dup2", "close_range", "chdir", "execve"};
enum Step { kNetns, kUserns, kSetgroups, kSetgid, kSetuid, kDup, kCloseRange, kChdir, kExecve };

[[noreturn]] void ChildFail(int fd, int step) {
  ChildReport r{step, errno};
  ssize_t ignored = write(fd, &r, sizeof r);
  (void)ignored;
  _exit(127);
}

void Pipe(Fd& rd, Fd& wr) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) Throw("pipe2");
  rd.reset(p[0]);
  wr.reset(p[1]);
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

ExecResult ExecIn(const ExecParams& p) {
  Fd netns, userns;
  if (!p.netns.empty()) {
    netns.reset(open(p.netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns.valid()) Throw("open", p.netns);
  }
  if (!p.userns.empty()) {
    userns.reset(open(p.userns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!userns.valid()) Throw("open", p.userns);
  } else if (p.owner_userns && netns.valid()) {
    userns.reset(ioctl(netns.get(), NS_GET_USERNS));
    if (!userns.valid()) Throw("ioctl", p.netns);
  }
  Fd pr[3], pw[3];  // stdio pipes: [0] parent writes, [1],[2] parent reads
  for (int i = 0; i < 3; i++)
    if (p.stdio[i] < 0) Pipe(pr[i], pw[i]);
  Fd report_rd, report_wr;
  Pipe(report_rd, report_wr);

  // Built before fork: the child must not allocate.
  std::vector<char*> argv, envp;
  for (auto& a : p.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : p.envp) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int child_fd[3];
  for (int i = 0; i < 3; i++)
    child_fd[i] = p.stdio[i] >= 0 ? p.stdio[i] : (i == 0 ? pr[0].get() : pw[i].get());

  pid_t pid = fork();
  if (pid < 0) Throw("fork");
  if (pid == 0) {
    // Child: async-signal-safe calls only. Reset what Node changed.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);
    int rep = report_wr.get();
    if (netns.valid() && setns(netns.get(), CLONE_NEWNET) < 0) ChildFail(rep, kNetns);
    if (userns.valid()) {
      if (setns(userns.get(), CLONE_NEWUSER) < 0) ChildFail(rep, kUserns);
      if (p.become_root) {
        // EPERM here means setgroups is "deny" in this userns: keep going.
        if (setgroups(0, nullptr) < 0 && errno != EPERM) ChildFail(rep, kSetgroups);
        if (setresgid(0, 0, 0) < 0) ChildFail(rep, kSetgid);
        if (setresuid(0, 0, 0) < 0) ChildFail(rep, kSetuid);
      }
    }
    for (int i = 0; i < 3; i++) {
      if (child_fd[i] == i) {
        int fl = fcntl(i, F_GETFD);
        if (fl >= 0) fcntl(i, F_SETFD, fl & ~FD_CLOEXEC);
      } else if (dup2(child_fd[i], i) < 0) {
        ChildFail(rep, kDup);
      }
    }
    // Everything above 2 goes, except the report pipe (CLOEXEC: execve closes it).
    if (rep > 3 && syscall(SYS_close_range, 3, rep - 1, 0) < 0) ChildFail(rep, kCloseRange);
    if (syscall(SYS_close_range, rep + 1, ~0U, 0) < 0) ChildFail(rep, kCloseRange);
    if (!p.cwd.empty() && chdir(p.cwd.c_str()) < 0) ChildFail(rep, kChdir);
    execve(p.file.c_str(), argv.data(), envp.data());
    ChildFail(rep, kExecve);
  }

  ExecResult res;
  res.pid = pid;
  report_wr.reset();
  pr[0].reset();
  pw[1].reset();
  pw[2].reset();

  ChildReport rep{};
  ssize_t rn;
  while ((rn = read(report_rd.get(), &rep, sizeof rep)) < 0 && errno == EINTR) {
  }
  if (rn == static_cast<ssize_t>(sizeof rep)) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const std::string& where = rep.step == kNetns ? p.netns
                               : rep.step == kUserns ? p.userns
                               : rep.step == kChdir  ? p.cwd
                                                     : p.file;
    Throw(kSteps[rep.step], where, rep.err);
  }

  // Feed stdin and drain stdout/stderr together so no pipe fills up; the
  // pidfd tells when the child itself is done (and bounds the timeout).
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) {
    int err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    Throw("pidfd_open", "", err);
  }
  bool exited = false;
  size_t in_off = 0;
  if (pw[0].valid() && p.input.empty()) pw[0].reset();
  if (pw[0].valid()) fcntl(pw[0].get(), F_SETFL, O_NONBLOCK);
  int64_t deadline = p.timeout_ms > 0 ? NowMs() + p.timeout_ms : 0;
  for (;;) {
    struct pollfd fds[4];
    int which[4];
    int nf = 0;
    if (pw[0].valid()) { fds[nf] = {pw[0].get(), POLLOUT, 0}; which[nf++] = 0; }
    if (pr[1].valid()) { fds[nf] = {pr[1].get(), POLLIN, 0}; which[nf++] = 1; }
    if (pr[2].valid()) { fds[nf] = {pr[2].get(), POLLIN, 0}; which[nf++] = 2; }
    if (nf == 0 && exited) break;
    if (exited) {
      // The child is gone: take what is already in the pipes and stop, even
      // if a grandchild still holds them open.
      for (int w = 1; w <= 2; w++) {
        if (!pr[w].valid()) continue;
        fcntl(pr[w].get(), F_SETFL, O_NONBLOCK);
        char buf[65536];
        ssize_t k;
        std::string& dst = w == 1 ? res.out : res.err;
        while ((k = read(pr[w].get(), buf, sizeof buf)) > 0) {
          size_t room = p.max_output > dst.size() ? p.max_output - dst.size() : 0;
          dst.append(buf, static_cast<size_t>(k) < room ? k : room);
        }
      }
      break;
    }
    fds[nf] = {pidfd.get(), POLLIN, 0};
    which[nf++] = 3;
    int wait_ms = -1;
    if (deadline) {
      int64_t left = deadline - NowMs();
      if (left <= 0) {
        res.timed_out = true;
        kill(pid, SIGKILL);
        break;
      }
      wait_ms = static_cast<int>(left);
    }
    int n = poll(fds, nf, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      Throw("poll", "", err);
    }
    for (int i = 0; i < nf; i++) {
      if (!fds[i].revents) continue;
      int w = which[i];
      if (w == 3) {
        exited = true;
      } else if (w == 0) {
        ssize_t k = write(pw[0].get(), p.input.data() + in_off, p.input.size() - in_off);
        if (k > 0) in_off += k;
        if ((k < 0 && errno != EAGAIN && errno != EINTR) || in_off == p.input.size()) pw[0].reset();
      } else {
        char buf[65536];
        ssize_t k = read(pr[w].get(), buf, sizeof buf);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) {
          pr[w].reset();
          continue;
        }
        std::string& dst = w == 1 ? res.out : res.err;
        size_t room = p.max_output > dst.size() ? p.max_output - dst.size() : 0;
        dst.append(buf, static_cast<size_t>(k) < room ? k : room);
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Throw("waitpid");
  }
  if (WIFEXITED(status)) {
    res.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    res.signal = WTERMSIG(status);
  }
  return res;
}

}  // namespace nstool
