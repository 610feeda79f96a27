#include "features.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

#include "errors.h"
#include "fd.h"
#include "kernel_abi.h"


namespace nstool {

namespace {

struct CloneArgs {  // struct clone_args as of CLONE_ARGS_SIZE_VER2 (88 bytes)
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgs) == 88, "clone_args VER2 is 88 bytes");

int Errno(long r) { return r < 0 ? errno : 0; }

// clone3 must never make a process here (we are a multithreaded Node):
// every probe passes arguments the kernel rejects before it copies
// anything. Should one ever succeed, the child leaves at once.
int Clone3(CloneArgs* args, size_t size) {
  long r = syscall(SYS_clone3, args, size);
  if (r == 0) syscall(SYS_exit_group, 0);
  if (r > 0) {
    int st;
    waitpid(static_cast<pid_t>(r), &st, __WALL);
    return 0;
  }
  return errno;
}

struct UnprivArgs {
  unsigned uid, gid;
  bool drop;
  const char* step;
  int err;
};

// Runs in a child made with CLONE_VM | CLONE_VFORK: it shares our memory
// while we wait, has every signal blocked, and makes raw syscalls only
// (errno it sets is that of the waiting thread, which reads none until we
// resume). Credentials and namespaces are its own.
int UnprivFail(UnprivArgs* a, const char* step) {
  a->step = step;
  a->err = errno;
  return 1;
}

int UnprivMain(void* p) {
  auto* a = static_cast<UnprivArgs*>(p);
  if (a->drop) {
    if (syscall(SYS_setgroups, 0, nullptr) < 0) return UnprivFail(a, "setgroups");
    if (syscall(SYS_setresgid, a->gid, a->gid, a->gid) < 0) return UnprivFail(a, "setresgid");
    if (syscall(SYS_setresuid, a->uid, a->uid, a->uid) < 0) return UnprivFail(a, "setresuid");
  }
  if (syscall(SYS_unshare, CLONE_NEWUSER) < 0) return UnprivFail(a, "unshare");
  return 0;
}

constexpr size_t kProbeStack = 64 * 1024;

}  // namespace

std::vector<std::pair<std::string, int>> ProbeSyscalls() {
  std::vector<std::pair<std::string, int>> out;
  const long page = sysconf(_SC_PAGESIZE);

  // pidfd_open on ourselves, and a signal 0 through it.
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)));
  out.emplace_back("pidfd_open", pidfd.valid() ? 0 : errno);
  out.emplace_back("pidfd_send_signal",
                   pidfd.valid() ? Errno(syscall(SYS_pidfd_send_signal, pidfd.get(), 0, nullptr, 0)) : ENOSYS);

  // clone3 checks the size before anything else: more than a page is E2BIG.
  out.emplace_back("clone3", Clone3(nullptr, static_cast<size_t>(page) + 1));

  // A kernel that knows clone_args.cgroup rejects a cgroup fd above
  // INT_MAX with EINVAL while copying the arguments; one that does not
  // sees non-zero bytes past its struct and answers E2BIG.
  CloneArgs ca{};
  ca.flags = CLONE_INTO_CGROUP;
  ca.cgroup = static_cast<uint64_t>(INT_MAX) + 1;
  out.emplace_back("clone_into_cgroup", Clone3(&ca, sizeof ca));

  // The new mount API: each call fails on its arguments when present.
  out.emplace_back("mount_setattr",
                   Errno(syscall(SYS_mount_setattr, -1, "", AT_EMPTY_PATH, nullptr, static_cast<size_t>(page) + 1)));
  out.emplace_back("open_tree", Errno(syscall(SYS_open_tree, -1, "", ~0u)));
  out.emplace_back("move_mount", Errno(syscall(SYS_move_mount, -1, "", -1, "", ~0u)));
  out.emplace_back("fsopen", Errno(syscall(SYS_fsopen, "", ~0u)));
  return out;
}

UnprivResult ProbeUnprivilegedUserns(unsigned uid, unsigned gid, bool drop) {
  void* stack = mmap(nullptr, kProbeStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) Throw("mmap");
  UnprivArgs a{uid, gid, drop, "", 0};
  // The child must never run one of Node's signal handlers on our memory.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(UnprivMain, static_cast<char*>(stack) + kProbeStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
  int clone_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    munmap(stack, kProbeStack);
    Throw("clone", "", clone_err);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  munmap(stack, kProbeStack);
  return {a.step, a.err};
}

void ProbeRecursiveReadonly(const std::string& path) {
  Fd tree(static_cast<int>(
      syscall(SYS_open_tree, AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree.valid()) Throw("open_tree", path);
  MountAttr attr{MOUNT_ATTR_RDONLY, 0, 0, 0};
  if (syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
    Throw("mount_setattr", path);
}

void MountTmpfs(const std::string& target) {
  if (mount("tmpfs", target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=1m") < 0)
    Throw("mount", "tmpfs", errno, target);
}

}  // namespace nstool
