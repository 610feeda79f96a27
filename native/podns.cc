#include "podns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "errors.h"
#include "fd.h"
#include "keeper_client.h"
#include "kernel_abi.h"
#include "pin.h"


namespace nstool {

namespace {

constexpr size_t kChildStack = 64 * 1024;
constexpr size_t kHostnameMax = 64;  // __NEW_UTS_LEN

enum Step : int { kStart = 0, kSetns, kUnshare, kSethostname, kOpenIpc, kOpenUts };

const char* StepSyscall(int step) {
  switch (step) {
    case kSetns: return "setns";
    case kUnshare: return "unshare";
    case kSethostname: return "sethostname";
    case kOpenIpc:
    case kOpenUts: return "open";
    default: return "clone";
  }
}

// What the child did, written straight into our memory (CLONE_VM): we are
// suspended until it exits (CLONE_VFORK), so nothing races with it.
struct ChildReport {
  int step = kStart;
  int err = 0;
  int ipc_fd = -1;
  int uts_fd = -1;
  bool done = false;
};

struct ChildArgs {
  int userns_fd;
  int flags;  // CLONE_NEWIPC and/or CLONE_NEWUTS
  const char* hostname;
  size_t hostname_len;
  ChildReport* rep;
};

// Runs in the child, on its own stack, in our memory and our fd table
// (CLONE_FILES): the fds it opens are ours once it exits. It is alone in its
// thread group with its own fs_struct, so it may join a user namespace, and
// there it has every capability, so it may make namespaces the userns owns
// and name the host. Raw syscalls only: no libc state beyond errno (ours,
// and we are suspended). It never waits for anything, so no death signal is
// needed: it ends by itself within microseconds, whatever happens to us.
int ChildMain(void* p) {
  ChildArgs* a = static_cast<ChildArgs*>(p);
  ChildReport* r = a->rep;
  r->step = kSetns;
  if (syscall(SYS_setns, a->userns_fd, CLONE_NEWUSER) < 0) goto fail;
  r->step = kUnshare;
  if (syscall(SYS_unshare, a->flags) < 0) goto fail;
  if (a->flags & CLONE_NEWUTS) {
    r->step = kSethostname;
    if (syscall(SYS_sethostname, a->hostname, a->hostname_len) < 0) goto fail;
  }
  if (a->flags & CLONE_NEWIPC) {
    r->step = kOpenIpc;
    r->ipc_fd = static_cast<int>(syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC));
    if (r->ipc_fd < 0) goto fail;
  }
  if (a->flags & CLONE_NEWUTS) {
    r->step = kOpenUts;
    r->uts_fd = static_cast<int>(syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/ns/uts", O_RDONLY | O_CLOEXEC));
    if (r->uts_fd < 0) goto fail;
  }
  r->done = true;
  syscall(SYS_exit, 0);
  return 0;
fail:
  r->err = errno;
  syscall(SYS_exit, 1);
  return 1;
}

struct Stat {
  uint64_t ino, dev;
  bool operator==(const Stat& o) const { return ino == o.ino && dev == o.dev; }
};

Stat Identify(int fd, const std::string& what) {
  struct stat st {};
  if (fstat(fd, &st) < 0) Throw("fstat", what);
  return {static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_dev)};
}

// FD must be a namespace of TYPE owned by the user namespace OWNER.
void CheckOwned(int fd, int type, const Stat& owner, const std::string& what) {
  int t = ioctl(fd, NS_GET_NSTYPE);
  if (t < 0) Throw("ioctl", what);
  if (t != type) Throw("ioctl", what, EINVAL);
  Fd u(ioctl(fd, NS_GET_USERNS));
  if (!u.valid()) Throw("ioctl", what);
  if (!(Identify(u.get(), what) == owner)) Throw("ioctl", what, EINVAL);
}

std::string FdPath(int fd) {
  char buf[64];
  snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
  return buf;
}

// Runs the child to its end and reaps it; returns what it reported.
ChildReport RunChild(int userns_fd, int flags, const std::string& hostname) {
  ChildReport rep;
  ChildArgs args{userns_fd, flags, hostname.data(), hostname.size(), &rep};
  void* stack = mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) Throw("mmap");
  // The child starts with every signal blocked: it shares our memory and
  // must never run one of Node's handlers. SIGKILL still ends it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  pid_t pid = clone(ChildMain, static_cast<char*>(stack) + kChildStack,
                    CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | SIGCHLD, &args, &pidfd);
  int clone_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  // CLONE_VFORK: the child has left our memory by now (it exited).
  munmap(stack, kChildStack);
  if (pid < 0) Throw("clone", "", clone_err);
  Fd pfd(pidfd);
  siginfo_t si;
  while (waitid(static_cast<idtype_t>(P_PIDFD), pfd.get(), &si, WEXITED) < 0 && errno == EINTR) {
  }
  return rep;
}

}  // namespace

PodNsResult CreatePodNs(const PodNsParams& p) {
  const bool to_keeper = !p.keeper_sock.empty();
  const bool want_ipc = !(to_keeper ? p.ipc_request : p.ipc_pin).empty();
  const bool want_uts = !(to_keeper ? p.uts_request : p.uts_pin).empty();
  if (!want_ipc && !want_uts) Throw("unshare", p.userns, EINVAL);
  if (want_uts && p.hostname.size() > kHostnameMax) Throw("sethostname", p.uts_pin, EINVAL);
  // O_NONBLOCK: a FIFO where the pin should be must not hang us.
  Fd userns(open(p.userns.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!userns.valid()) Throw("open", p.userns);
  int type = ioctl(userns.get(), NS_GET_NSTYPE);
  if (type < 0) Throw("ioctl", p.userns);
  if (type != CLONE_NEWUSER) Throw("setns", p.userns, EINVAL);
  Stat owner = Identify(userns.get(), p.userns);

  int flags = (want_ipc ? CLONE_NEWIPC : 0) | (want_uts ? CLONE_NEWUTS : 0);
  ChildReport rep = RunChild(userns.get(), flags, p.hostname);
  // Whatever the child opened is in our table now: owned from here on.
  Fd ipc(rep.ipc_fd), uts(rep.uts_fd);
  if (!rep.done) {
    // Killed before it reported anything: there is no errno to give.
    if (rep.err == 0) Throw("clone", p.userns, ECHILD);
    const std::string& where = rep.step == kSethostname || rep.step == kOpenUts ? p.uts_pin
                               : rep.step == kOpenIpc                        ? p.ipc_pin
                                                                             : p.userns;
    Throw(StepSyscall(rep.step), where, rep.err);
  }

  PodNsResult r;
  r.userns_ino = owner.ino;
  r.userns_dev = owner.dev;
  if (want_ipc) {
    CheckOwned(ipc.get(), CLONE_NEWIPC, owner, p.ipc_pin);
    Stat i = Identify(ipc.get(), p.ipc_pin);
    r.ipc_ino = i.ino;
    r.ipc_dev = i.dev;
  }
  if (want_uts) {
    CheckOwned(uts.get(), CLONE_NEWUTS, owner, p.uts_pin);
    Stat u = Identify(uts.get(), p.uts_pin);
    r.uts_ino = u.ino;
    r.uts_dev = u.dev;
  }

  // The keeper pins them in its mount namespace; what it answered is the
  // caller's to judge (and undo).
  if (to_keeper) {
    if (want_ipc) r.ipc_reply = KeeperCall(p.keeper_sock, p.ipc_request, {ipc.get()}, p.timeout_ms);
    if (want_uts) r.uts_reply = KeeperCall(p.keeper_sock, p.uts_request, {uts.get()}, p.timeout_ms);
    return r;
  }
  // Pinned from the fds we hold: nothing else names these namespaces.
  if (want_ipc) Pin(FdPath(ipc.get()), p.ipc_pin);
  if (want_uts) {
    try {
      Pin(FdPath(uts.get()), p.uts_pin);
    } catch (...) {
      if (want_ipc) {
        try {
          Unpin(p.ipc_pin);
        } catch (...) {
        }
      }
      throw;
    }
  }
  return r;
}

}  // namespace nstool
