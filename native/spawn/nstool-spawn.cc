// nstool-spawn: the one door through which nstool starts a program (a
// runtime, a CNI plugin, a program in a pod). Node's child_process.spawn
// starts this helper with the program's stdio as fds 0-2 and the program's
// environment; the helper then
//   - dies with its parent (PR_SET_PDEATHSIG(SIGKILL), checked against the
//     parent pid it was given, so a parent that died first is noticed too);
//   - closes every other fd (libuv leaves fds without FD_CLOEXEC open);
//   - optionally drops supplementary groups, joins a netns and then a userns
//     (a file, or the owner of the netns; the userns first when only it
//     grants the right to join the netns) and becomes that userns's root,
//     and changes directory: all as the program will run, and on a process
//     with a single thread, where setns(CLONE_NEWUSER) is allowed;
//   - and execs the program.
// Failures before execve go to the report fd as one line "STEP ERRNO\n" and
// the helper exits 127; a successful execve closes the report fd (CLOEXEC)
// with nothing written. Usage:
//   nstool-spawn [--report-fd FD] [--parent PID] [--drop-groups] [--netns PATH]
//                [--userns PATH | --owner-userns] [--root] [--cwd DIR] -- FILE ARG0 [ARG...]
// (--report-fd, when given, comes first; every option at most once.)
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace {

constexpr int kFailExit = 127;

struct Options {
  long parent = 0;        // expected parent pid; 0 = not checked
  int report_fd = -1;     // -1 = report on stderr
  bool drop_groups = false;
  const char* netns = nullptr;
  const char* userns = nullptr;
  bool owner_userns = false;
  bool root = false;
  const char* cwd = nullptr;
  char** argv = nullptr;  // FILE ARG0 ARG...
};

int g_report = -1;

// The step names are part of the protocol with src/process.ts.
[[noreturn]] void Fail(const char* step, int err) {
  char line[64];
  int n = snprintf(line, sizeof line, "%s %d\n", step, err);
  if (g_report >= 0) {
    ssize_t ignored = write(g_report, line, static_cast<size_t>(n));
    (void)ignored;
  } else {
    fprintf(stderr, "nstool-spawn: %s: %s\n", step, strerror(err));
  }
  _exit(kFailExit);
}

[[noreturn]] void Usage(const char* what) {
  if (g_report >= 0) Fail("usage", EINVAL);
  fprintf(stderr, "nstool-spawn: %s\n", what);
  _exit(kFailExit);
}

bool ParseLong(const char* s, long min, long max, long* out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < min || v > max) return false;
  *out = v;
  return true;
}

Options Parse(int argc, char** argv) {
  Options o;
  int i = 1;
  // The report fd comes first, so that every usage error reaches it.
  long fd;
  if (argc > 2 && strcmp(argv[1], "--report-fd") == 0) {
    if (!ParseLong(argv[2], 3, INT_MAX, &fd)) Usage("--report-fd takes one fd above 2");
    o.report_fd = g_report = static_cast<int>(fd);
    i = 3;
  }
  auto value = [&]() -> const char* {
    if (i + 1 >= argc) Usage("an option lacks its value");
    return argv[++i];
  };
  auto once = [](bool seen, const char* name) {
    if (seen) Usage(name);
  };
  for (; i < argc; i++) {
    const char* a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--parent") == 0) {
      once(o.parent, "--parent given twice");
      if (!ParseLong(value(), 1, INT_MAX, &o.parent)) Usage("--parent takes a pid");
    } else if (strcmp(a, "--drop-groups") == 0) {
      once(o.drop_groups, "--drop-groups given twice");
      o.drop_groups = true;
    } else if (strcmp(a, "--netns") == 0) {
      once(o.netns, "--netns given twice");
      o.netns = value();
    } else if (strcmp(a, "--userns") == 0) {
      once(o.userns, "--userns given twice");
      o.userns = value();
    } else if (strcmp(a, "--owner-userns") == 0) {
      once(o.owner_userns, "--owner-userns given twice");
      o.owner_userns = true;
    } else if (strcmp(a, "--root") == 0) {
      once(o.root, "--root given twice");
      o.root = true;
    } else if (strcmp(a, "--cwd") == 0) {
      once(o.cwd, "--cwd given twice");
      o.cwd = value();
    } else {
      Usage("unknown option (--report-fd must come first; the program goes after --)");
    }
  }
  if (o.userns && o.owner_userns) Usage("--userns and --owner-userns exclude each other");
  if (o.owner_userns && !o.netns) Usage("--owner-userns needs --netns");
  if (o.root && !o.userns && !o.owner_userns) Usage("--root needs a user namespace to join");
  const char* paths[] = {o.netns, o.userns, o.cwd};
  for (const char* p : paths)
    if (p && p[0] != '/') Usage("paths must be absolute");
  // FILE and ARG0 at least.
  if (argc - i < 2) Usage("no program after --");
  if (argv[i][0] != '/') Usage("the program must be an absolute path");
  o.argv = argv + i;
  return o;
}

// PR_SET_PDEATHSIG, then a check that the parent is still the one we were
// started by: a parent that died before the prctl sends no signal.
void DieWithParent(long parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) Fail("prctl", errno);
  if (parent && getppid() != parent) _exit(kFailExit);
}

int CloseRange(unsigned first, unsigned last) {
  if (first > last) return 0;
  return static_cast<int>(syscall(SYS_close_range, first, last, 0));
}

// Everything above 2 goes, except the report fd (close-on-exec). close_range
// needs Linux 5.9; nstool needs newer kernels for other reasons.
void CloseFds(int keep) {
  int r = keep >= 0 ? CloseRange(3, keep - 1) | CloseRange(keep + 1, ~0U) : CloseRange(3, ~0U);
  if (r < 0) Fail("close_range", errno);
}

}  // namespace

int main(int argc, char** argv) {
  // Signal state is inherited through execve: start from the defaults.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);

  Options o = Parse(argc, argv);
  DieWithParent(o.parent);
  if (o.report_fd >= 0) {
    int fl = fcntl(o.report_fd, F_GETFD);
    if (fl < 0 || fcntl(o.report_fd, F_SETFD, fl | FD_CLOEXEC) < 0) Fail("fcntl", errno);
  }
  CloseFds(o.report_fd);

  // While still privileged in the caller's userns: a userns with setgroups
  // "deny" would refuse it later, and the groups would stay.
  if (o.drop_groups && setgroups(0, nullptr) < 0) Fail("setgroups", errno);

  int netns = -1, userns = -1;
  if (o.netns && (netns = open(o.netns, O_RDONLY | O_CLOEXEC)) < 0) Fail("open-netns", errno);
  if (o.userns && (userns = open(o.userns, O_RDONLY | O_CLOEXEC)) < 0) Fail("open-userns", errno);
  if (o.owner_userns && (userns = ioctl(netns, NS_GET_USERNS)) < 0) Fail("ns-get-userns", errno);
  // The netns first, while we still hold the caller's capabilities over it.
  // A caller without them (rootless) gets them from the userns that owns
  // the netns: join that first, then the netns.
  bool net_later = false;
  if (netns >= 0 && setns(netns, CLONE_NEWNET) < 0) {
    if (errno != EPERM || userns < 0) Fail("setns-net", errno);
    net_later = true;
  }
  if (userns >= 0 && setns(userns, CLONE_NEWUSER) < 0) Fail("setns-user", errno);
  if (net_later && setns(netns, CLONE_NEWNET) < 0) Fail("setns-net", errno);
  if (o.root) {
    if (setresgid(0, 0, 0) < 0) Fail("setresgid", errno);
    if (setresuid(0, 0, 0) < 0) Fail("setresuid", errno);
  }
  if (netns >= 0) close(netns);
  if (userns >= 0) close(userns);
  // After the switch, so the directory is reached with the program's rights.
  if (o.cwd && chdir(o.cwd) < 0) Fail("chdir", errno);
  // A change of credentials (a new userns, other ids) clears the death
  // signal: set it again, last. (execve of a set-id or file-capability
  // program clears it too; nothing can be done about that here.)
  DieWithParent(o.parent);
  execve(o.argv[0], o.argv + 1, environ);
  Fail("execve", errno);
}
