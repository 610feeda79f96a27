#include "userns_netns.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "errors.h"
#include "fd.h"
#include "kernel_abi.h"
#include "nsinfo.h"
#include "pin.h"


namespace nstool {

namespace {

constexpr size_t kHelperStack = 64 * 1024;

// Runs in the helper child, made with a fresh userns and netns. It shares
// our memory (CLONE_VM): copying a Node process's page tables cost more than
// the namespaces and stalled the event loop. So it makes no call that writes
// memory, only prctl and pause (signals blocked), on its own stack, until it is killed; the
// parent does all the work through /proc/<pid>. PDEATHSIG covers the parent
// thread dying first (it fires when the forking *thread* exits).
int HelperMain(void* parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died before the line above: then no signal comes.
  if (getppid() != static_cast<pid_t>(reinterpret_cast<intptr_t>(parent))) _exit(0);
  for (;;) pause();
  return 0;
}

// The helper's stack is kept per thread between creates. Mapping and
// unmapping one per create made each create flush the TLBs of every CPU
// Node's other threads ran on (an IPI each, dear in a VM) and fault in fresh
// zeroed pages; the C reference, single-threaded, pays neither.
struct StackCache {
  void* stack = nullptr;
  ~StackCache() {
    if (stack) munmap(stack, kHelperStack);
  }
};
thread_local StackCache tl_stack;

void* TakeStack() {
  void* s = tl_stack.stack;
  tl_stack.stack = nullptr;
  if (s) return s;
  s = mmap(nullptr, kHelperStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (s == MAP_FAILED) Throw("mmap");
  return s;
}

// Only for a stack no helper runs on any more (never started, or reaped).
void GiveBackStack(void* s) {
  if (tl_stack.stack == nullptr) {
    tl_stack.stack = s;
  } else {
    munmap(s, kHelperStack);
  }
}

// The helper's clone flags. No exit signal (the low byte is 0): its death
// sends Node no SIGCHLD (whose handler, while Node has children of its own,
// wakes the event loop to look for them), and an application that ignores
// SIGCHLD cannot have it reaped behind our back, which would free its pid
// while we still name it by /proc/<pid>. Waits for it need __WALL.
constexpr unsigned long kHelperFlags = CLONE_VM | CLONE_NEWUSER | CLONE_NEWNET | CLONE_PIDFD;

// Restricts the calling thread to the CPU it is on, for the clone: the
// helper inherits the mask. Left free, the kernel starts a new child on the
// idlest CPU, and it is woken there twice (at the clone, and by the kill)
// and wakes us from there once (its exit): each a cross-CPU wake-up, dear
// in a VM, and on a busy machine a wait for whatever runs on that CPU. It
// does no work worth a CPU of its own (prctl, then pause until killed), so
// it runs on ours, in the gaps our own calls leave. The destructor gives
// the thread its mask back; if any step fails, the helper just runs free.
// (A mask set on this thread from outside during the clone, taskset -a
// say, is undone by that restore: a window of one clone.)
class SameCpu {
 public:
  SameCpu() {
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof was_, &was_) < 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned_ = sched_setaffinity(0, sizeof one, &one) == 0;
  }
  ~SameCpu() {
    if (pinned_) sched_setaffinity(0, sizeof was_, &was_);
  }
  SameCpu(const SameCpu&) = delete;
  SameCpu& operator=(const SameCpu&) = delete;

 private:
  cpu_set_t was_;
  bool pinned_ = false;
};

// The helper, held by pidfd; killed and reaped on every path.
class Helper {
 public:
  Helper() {
    stack_ = TakeStack();
    int pidfd = -1;
    int clone_err = 0;
    {
      SameCpu same_cpu;
      // The helper starts with every signal blocked: sharing our memory, it
      // must never run one of Node's handlers, and pause() must never return
      // (its errno would land in this thread's). SIGKILL still ends it.
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, &old);
      pid_ = clone(HelperMain, static_cast<char*>(stack_) + kHelperStack, kHelperFlags,
                   reinterpret_cast<void*>(static_cast<intptr_t>(getpid())), &pidfd);
      clone_err = errno;
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    if (pid_ < 0) {
      int err = clone_err;
      GiveBackStack(stack_);
      Throw("clone", "", err);
    }
    pidfd_.reset(pidfd);
  }
  ~Helper() {
    // The stack is given back only once the helper is reaped: it runs on it.
    syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    siginfo_t si;
    while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &si, WEXITED | __WALL) < 0 && errno == EINTR) {
    }
    GiveBackStack(stack_);
  }
  pid_t pid() const { return pid_; }
  // Kills without reaping (the destructor reaps): the helper is gone but its
  // pid stays ours.
  void KillNow() const {
    syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    siginfo_t si;
    while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &si, WEXITED | WNOWAIT | __WALL) < 0 && errno == EINTR) {
    }
  }

 private:
  void* stack_ = nullptr;
  pid_t pid_ = -1;
  Fd pidfd_;
};

std::string ProcPath(pid_t pid, const char* leaf) {
  char buf[64];
  snprintf(buf, sizeof buf, "/proc/%d/%s", pid, leaf);
  return buf;
}

std::string FdPath(int fd) {
  char buf[64];
  snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
  return buf;
}

// Each map goes in one write(), as the kernel requires.
void WriteProcFile(const std::string& path, const std::string& text) {
  Fd f(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!f.valid()) Throw("open", path);
  ssize_t n = write(f.get(), text.data(), text.size());
  if (n < 0) Throw("write", path);
  if (static_cast<size_t>(n) != text.size()) Throw("write", path, EIO);
}

NsId Identify(int fd, const std::string& path) {
  struct stat st {};
  if (fstat(fd, &st) < 0) Throw("fstat", path);
  return {static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_dev)};
}

// Test-only fault injection, NSTOOL_TEST_FAULT=<step>:<kill|fail|hold>:
// at STEP the helper is killed, or the parent fails with EIO, or it sleeps
// two seconds (so a test can look at the helper). Read once; unset costs a
// branch per step.
struct Fault {
  char step[32] = "";
  char action = 0;
};

const Fault& TestFault() {
  static const Fault f = [] {
    Fault f;
    const char* v = getenv("NSTOOL_TEST_FAULT");
    const char* colon = v ? strchr(v, ':') : nullptr;
    if (colon && static_cast<size_t>(colon - v) < sizeof f.step) {
      memcpy(f.step, v, colon - v);
      f.action = colon[1];
    }
    return f;
  }();
  return f;
}

void MaybeFault(const char* step, const Helper& h) {
  const Fault& f = TestFault();
  if (f.action == 0 || strcmp(f.step, step) != 0) return;
  if (f.action == 'k') h.KillNow();
  if (f.action == 'f') Throw("fault", step, EIO);
  if (f.action == 'h') usleep(2000 * 1000);
}

}  // namespace

CreateResult CreateUsernsNetns(const CreateParams& p) {
  Helper helper;
  MaybeFault("clone", helper);
  // The helper is our unreaped child, so its pid cannot be reused while we
  // hold it: the /proc/<pid> paths below name its namespaces and no other.
  std::string user_path = ProcPath(helper.pid(), "ns/user");
  std::string net_path = ProcPath(helper.pid(), "ns/net");
  Fd userns(open(user_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!userns.valid()) Throw("open", user_path);
  Fd netns(open(net_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns.valid()) Throw("open", net_path);
  MaybeFault("open-ns", helper);

  WriteProcFile(ProcPath(helper.pid(), "uid_map"), p.uid_map);
  MaybeFault("uid-map", helper);
  // setgroups must be settled before gid_map is written.
  if (!p.setgroups.empty()) WriteProcFile(ProcPath(helper.pid(), "setgroups"), p.setgroups);
  WriteProcFile(ProcPath(helper.pid(), "gid_map"), p.gid_map);
  MaybeFault("gid-map", helper);

  CreateResult r{Identify(netns.get(), net_path), Identify(userns.get(), user_path)};
  r.userns_id = NsIdOf(userns.get());

  // Pin from the fds we hold rather than from /proc/<pid>.
  Pin(FdPath(netns.get()), p.netns_pin);
  if (!p.userns_pin.empty()) {
    try {
      MaybeFault("pin", helper);
      Pin(FdPath(userns.get()), p.userns_pin);
    } catch (...) {
      try {
        Unpin(p.netns_pin);
      } catch (...) {
      }
      throw;
    }
  }
  MaybeFault("done", helper);
  // Asked here, in the same call, rather than by the caller afterwards: it
  // saves the caller a syscall of its own (or a second trip to the pool).
  if (!p.guard.empty()) r.guarded = access(p.guard.c_str(), F_OK) == 0;
  return r;
}

struct HeldNs::Impl {
  Helper helper;
  Fd userns, netns;
  CreateResult ids;
};

HeldNs::HeldNs(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
// Members go in reverse order: both fds close, then ~Helper kills and reaps.
HeldNs::~HeldNs() = default;

std::unique_ptr<HeldNs> HeldNs::Start() {
  auto impl = std::make_unique<Impl>();
  // Our unreaped child: its pid names it and no other process until reaped.
  const pid_t pid = impl->helper.pid();
  std::string user_path = ProcPath(pid, "ns/user");
  std::string net_path = ProcPath(pid, "ns/net");
  impl->userns.reset(open(user_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!impl->userns.valid()) Throw("open", user_path);
  impl->netns.reset(open(net_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!impl->netns.valid()) Throw("open", net_path);
  impl->ids = {Identify(impl->netns.get(), net_path), Identify(impl->userns.get(), user_path)};
  return std::unique_ptr<HeldNs>(new HeldNs(std::move(impl)));
}

pid_t HeldNs::pid() const { return impl_->helper.pid(); }
int HeldNs::netns_fd() const { return impl_->netns.get(); }
int HeldNs::userns_fd() const { return impl_->userns.get(); }
CreateResult HeldNs::ids() const { return impl_->ids; }

void HeldNs::Write(const std::string& leaf, const std::string& text) const {
  WriteProcFile(ProcPath(pid(), leaf.c_str()), text);
}

std::string HeldNs::Read(const std::string& leaf) const {
  std::string path = ProcPath(pid(), leaf.c_str());
  Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f.valid()) Throw("open", path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(f.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Throw("read", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1 << 16)) Throw("read", path, EFBIG);
  }
  return out;
}

}  // namespace nstool
