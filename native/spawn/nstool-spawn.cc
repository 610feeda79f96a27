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
//                [--userns PATH | --owner-userns] [--root] [--cwd DIR]
//                [--detach --ready-fd N [--hold SOCKET NAME] [--deny-loopback]] -- FILE ARG0 [ARG...]
//   nstool-spawn --report-fd FD --kill PID STARTTIME GRACE_MS
// (--report-fd, when given, comes first; every option at most once.)
//
// --detach starts a program that outlives nstool (a pod's network process):
// the helper makes its own session and stays as the program's supervisor,
// the program's parent, with no death signal of its own; the program dies
// with it (PR_SET_PDEATHSIG). The program gets the write end of a pipe as
// fd N and writes to it once it is ready. The supervisor reports on the
// report fd: "pid PID" at once, then "ready", or "exit CODE" / "signal SIG"
// if the program ended first (a failure before execve is the program's
// "STEP ERRNO" line as usual); after "ready" it closes the report fd.
// With --hold it first hands the write end of an exit pipe to the user's
// keeper (its socket, "hold NAME"): when the keeper closes it (pin NAME was
// deleted, or the keeper died) the supervisor ends the program.
// With --deny-loopback the program runs under a seccomp filter that hands
// its connect, sendto (with an address), sendmsg and sendmmsg calls to the
// supervisor, which refuses (EACCES) those naming 127.0.0.0/8, ::1 or a
// v4-mapped 127.x on a socket of the host's network namespace (port 53, the
// host's stub resolver, excepted): a user-mode network process must not
// carry a pod's packets to the host's loopback services. Sockets in the
// pod's namespace (a backend's own splice to the pod's loopback) pass.
//
// --kill signals PID only if it is still the process that started at
// STARTTIME (field 22 of /proc/PID/stat), through a pidfd taken before the
// check: SIGTERM, SIGKILL after GRACE_MS, and waits until it is gone.
// It prints "killed" or "gone" (no such process, or another one).
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <grp.h>
#include <poll.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

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
  bool detach = false;
  long ready_fd = -1;
  long keep_fds = -1;  // fds from report_fd + 1 to this are the program's too
  const char* hold_sock = nullptr;
  const char* hold_name = nullptr;
  bool deny_loopback = false;
  char** argv = nullptr;  // FILE ARG0 ARG...
  // --kill
  long kill_pid = 0;
  const char* kill_start = nullptr;
  long grace_ms = 0;
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
    } else if (strcmp(a, "--detach") == 0) {
      once(o.detach, "--detach given twice");
      o.detach = true;
    } else if (strcmp(a, "--ready-fd") == 0) {
      once(o.ready_fd >= 0, "--ready-fd given twice");
      if (!ParseLong(value(), 3, 1024, &o.ready_fd)) Usage("--ready-fd takes an fd from 3 to 1024");
    } else if (strcmp(a, "--keep-fds") == 0) {
      once(o.keep_fds >= 0, "--keep-fds given twice");
      if (!ParseLong(value(), 4, 1024, &o.keep_fds)) Usage("--keep-fds takes an fd from 4 to 1024");
    } else if (strcmp(a, "--deny-loopback") == 0) {
      once(o.deny_loopback, "--deny-loopback given twice");
      o.deny_loopback = true;
    } else if (strcmp(a, "--hold") == 0) {
      once(o.hold_sock, "--hold given twice");
      o.hold_sock = value();
      o.hold_name = value();
    } else if (strcmp(a, "--kill") == 0) {
      once(o.kill_pid, "--kill given twice");
      if (!ParseLong(value(), 1, INT_MAX, &o.kill_pid)) Usage("--kill takes a pid");
      o.kill_start = value();
      if (!ParseLong(value(), 0, 600000, &o.grace_ms)) Usage("--kill takes a grace time in ms");
      return o;
    } else {
      Usage("unknown option (--report-fd must come first; the program goes after --)");
    }
  }
  if (o.detach != (o.ready_fd >= 0) || ((o.hold_sock || o.deny_loopback) && !o.detach)) Usage("--detach goes with --ready-fd (and --hold, --deny-loopback)");
  if (o.keep_fds >= 0 && (!o.detach || o.report_fd < 3 || o.keep_fds <= o.report_fd || o.ready_fd <= o.keep_fds))
    Usage("--keep-fds needs --detach, the report fd below them and the ready fd above");
  if (o.detach && (o.ready_fd == o.report_fd || o.parent)) Usage("--detach takes no --parent, and a ready fd other than the report fd");
  if (o.hold_sock && (o.hold_sock[0] != '/' || strlen(o.hold_sock) >= sizeof(sockaddr_un{}.sun_path))) Usage("--hold takes a socket path");
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
void CloseFds(int keep, int keep_upto) {
  unsigned from = static_cast<unsigned>(keep_upto >= 0 ? keep_upto + 1 : keep + 1);
  int r = keep >= 0 ? CloseRange(3, keep - 1) | CloseRange(from, ~0U) : CloseRange(3, ~0U);
  if (r < 0) Fail("close_range", errno);
}

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSignal(int pidfd, int sig) { return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0)); }

void Report(const char* text) {
  if (g_report < 0) return;
  ssize_t ignored = write(g_report, text, strlen(text));
  (void)ignored;
}

// Waits up to MS for the process behind PIDFD to end; true when it has.
bool WaitGone(int pidfd, long ms) {
  struct pollfd p {pidfd, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, static_cast<int>(ms))) < 0 && errno == EINTR) {
  }
  return r > 0;
}

// Field 22 of /proc/PID/stat, or "" when there is no such process.
std::string StartTimeOf(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return "";
  buf[n] = '\0';
  char* p = strrchr(buf, ')');
  if (!p) return "";
  int field = 2;
  char* save = nullptr;
  for (char* tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(nullptr, " ", &save))
    if (++field == 22) return tok;
  return "";
}

// One word on stdout, then exit (_exit would drop stdio's buffer).
[[noreturn]] void Say(const char* word) {
  std::string line = std::string(word) + "\n";
  ssize_t ignored = write(1, line.data(), line.size());
  (void)ignored;
  _exit(0);
}

[[noreturn]] void Kill(const Options& o) {
  // The pidfd first: if the start time then matches, it is that process.
  int pidfd = PidfdOpen(static_cast<pid_t>(o.kill_pid));
  if (pidfd < 0 && errno != ESRCH) Fail("pidfd_open", errno);
  if (pidfd < 0 || StartTimeOf(o.kill_pid) != o.kill_start) {
    Say("gone");
  }
  if (PidfdSignal(pidfd, SIGTERM) < 0) {
    if (errno != ESRCH) Fail("pidfd_send_signal", errno);
  } else if (!WaitGone(pidfd, o.grace_ms)) {
    if (PidfdSignal(pidfd, SIGKILL) < 0 && errno != ESRCH) Fail("pidfd_send_signal", errno);
    if (!WaitGone(pidfd, 10000)) Fail("wait", ETIMEDOUT);
  }
  Say("killed");
}

// Hands the write end of a new pipe to the keeper ("hold NAME"); returns
// the read end, which sees EOF when the keeper lets go of it.
int HoldInKeeper(const char* sock, const char* name) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) Fail("pipe2", errno);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) Fail("socket", errno);
  struct timeval tv {10, 0};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, sock, strlen(sock));
  if (connect(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0) Fail("keeper-connect", errno);
  std::string req = std::string("hold ") + name + "\n";
  struct iovec iov {const_cast<char*>(req.data()), req.size()};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &p[1], sizeof(int));
  if (sendmsg(s, &msg, MSG_NOSIGNAL) < 0) Fail("keeper-send", errno);
  char buf[128];
  ssize_t n;
  while ((n = recv(s, buf, sizeof buf - 1, 0)) < 0 && errno == EINTR) {
  }
  if (n < 0) Fail("keeper-recv", errno == EAGAIN ? ETIMEDOUT : errno);
  if (n == 0) Fail("keeper-recv", ECONNRESET);
  buf[n] = '\0';
  close(s);
  close(p[1]);
  if (strcmp(buf, "ok\n") == 0) return p[0];
  // "err STEP ERRNO": the keeper's errno is the one to report.
  char step[40];
  int err = EPROTO;
  if (sscanf(buf, "err %39s %d", step, &err) != 2 || err <= 0) err = EPROTO;
  Fail("keeper-hold", err);
}

// ---- --deny-loopback --------------------------------------------------------

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "nstool-spawn: --deny-loopback knows x86_64 and aarch64"
#endif

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int PidfdGetfd(int pidfd, int fd) { return static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0)); }

// In the child: the filter, whose listener fd it returns. Another ABI's
// calls (i386, x32) are refused outright: the backends make none.
int InstallLoopbackFilter() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) Fail("no-new-privs", errno);
  constexpr uint32_t kArgs4 = offsetof(seccomp_data, args) + 4 * sizeof(uint64_t);
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
#if defined(__x86_64__)
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
#endif
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 8, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sendmsg, 7, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sendmmsg, 6, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sendto, 0, 4),
      // sendto without an address (a connected socket's send) passes.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgs4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgs4 + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  int fd = static_cast<int>(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
  if (fd < 0) Fail("seccomp", errno);
  return fd;
}

bool ReadMem(pid_t pid, uint64_t addr, void* buf, size_t len) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

bool LoopbackTarget(const sockaddr_storage& ss, uint64_t len) {
  if (ss.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127 && ntohs(a->sin_port) != 53;
  }
  if (ss.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    bool lo = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) || (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
    return lo && ntohs(a->sin6_port) != 53;
  }
  return false;
}

// The guard's view of one trapped call.
class LoopbackGuard {
 public:
  explicit LoopbackGuard(int listener) : listener_(listener) {
    // The host's netns, as the cookie of a socket made here.
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t l = sizeof host_cookie_;
    if (s < 0 || getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &host_cookie_, &l) < 0) host_cookie_ = 0;
    if (s >= 0) close(s);
  }
  int fd() const { return listener_; }

  // Answers one notification; false when the listener is done.
  bool Serve() {
    seccomp_notif n;
    memset(&n, 0, sizeof n);
    if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) return errno == EINTR || errno == ENOENT;
    bool refuse = Refuse(n);
    seccomp_notif_resp r;
    memset(&r, 0, sizeof r);
    r.id = n.id;
    if (refuse) {
      r.error = -EACCES;
    } else {
      r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    }
    // ENOENT: the call was interrupted meanwhile; nothing to answer.
    ioctl(listener_, SECCOMP_IOCTL_NOTIF_SEND, &r);
    return true;
  }

 private:
  // True when the call must fail. What cannot be read is refused.
  bool Refuse(const seccomp_notif& n) {
    const auto pid = static_cast<pid_t>(n.pid);
    const auto* a = n.data.args;
    bool lo = false;
    switch (n.data.nr) {
      case __NR_connect:
        lo = Names(pid, a[1], a[2]);
        break;
      case __NR_sendto:
        lo = Names(pid, a[4], a[5]);
        break;
      case __NR_sendmsg: {
        msghdr m;
        if (!ReadMem(pid, a[1], &m, sizeof m)) return true;
        lo = Names(pid, reinterpret_cast<uint64_t>(m.msg_name), m.msg_namelen);
        break;
      }
      case __NR_sendmmsg: {
        uint64_t vlen = std::min<uint64_t>(a[2], 1024);
        for (uint64_t i = 0; i < vlen && !lo; i++) {
          mmsghdr h;
          if (!ReadMem(pid, a[1] + i * sizeof h, &h, sizeof h)) return true;
          lo = Names(pid, reinterpret_cast<uint64_t>(h.msg_hdr.msg_name), h.msg_hdr.msg_namelen);
        }
        break;
      }
      default:
        return true;
    }
    if (failed_) {
      failed_ = false;
      return true;
    }
    // A loopback address on a socket of another netns (the pod's) passes.
    if (lo && InOtherNetns(pid, static_cast<int>(a[0]))) lo = false;
    // The pid must still be the trapped task's when we decide on its memory.
    if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_ID_VALID, &n.id) < 0) return true;
    return lo;
  }

  bool Names(pid_t pid, uint64_t addr, uint64_t len) {
    if (addr == 0 || len < sizeof(sa_family_t)) return false;
    sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    uint64_t n = std::min<uint64_t>(len, sizeof ss);
    if (!ReadMem(pid, addr, &ss, n)) {
      failed_ = true;
      return false;
    }
    return LoopbackTarget(ss, n);
  }

  bool InOtherNetns(pid_t pid, int sockfd) {
    if (host_cookie_ == 0) return false;
    int pidfd = PidfdOpen(pid);
    if (pidfd < 0) return false;
    int s = PidfdGetfd(pidfd, sockfd);
    close(pidfd);
    if (s < 0) return false;
    uint64_t cookie = 0;
    socklen_t l = sizeof cookie;
    bool other = getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &l) == 0 && cookie != host_cookie_;
    close(s);
    return other;
  }

  int listener_;
  uint64_t host_cookie_ = 0;
  bool failed_ = false;
};

// The supervisor's loop (see the file comment); returns only in the child,
// which goes on to become the program.
void Supervise(Options& o) {
  if (setsid() < 0) Fail("setsid", errno);
  if (chdir("/") < 0) Fail("chdir", errno);
  // What a long-lived program makes (a socket, a log) is for this user alone.
  umask(077);
  int exit_fd = o.hold_sock ? HoldInKeeper(o.hold_sock, o.hold_name) : -1;
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) Fail("pipe2", errno);
  // The child's filter listener reaches us by number over this pair (its
  // own sendmsg would be trapped), and we take it with pidfd_getfd.
  int hand[2] = {-1, -1};
  if (o.deny_loopback && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, hand) < 0) Fail("socketpair", errno);
  pid_t self = getpid();
  pid_t child = fork();
  if (child < 0) Fail("fork", errno);
  if (child == 0) {
    if (exit_fd >= 0) close(exit_fd);
    close(ready[0]);
    if (o.deny_loopback) {
      close(hand[0]);
      int lfd = InstallLoopbackFilter();
      char ack = 0;
      if (write(hand[1], &lfd, sizeof lfd) != static_cast<ssize_t>(sizeof lfd) || read(hand[1], &ack, 1) != 1 || ack != 'k') {
        Fail("loopback-guard", EPROTO);
      }
      close(lfd);
      close(hand[1]);
    }
    int want = static_cast<int>(o.ready_fd);
    if (ready[1] != want) {
      if (dup2(ready[1], want) < 0) Fail("dup2", errno);  // without CLOEXEC
      close(ready[1]);
    } else if (fcntl(want, F_SETFD, 0) < 0) {
      Fail("fcntl", errno);
    }
    o.parent = self;  // the supervisor: DieWithParent watches it from now on
    return;
  }
  close(ready[1]);
  if (o.keep_fds >= 0) CloseRange(static_cast<unsigned>(o.report_fd + 1), static_cast<unsigned>(o.keep_fds));
  int pidfd = PidfdOpen(child);
  if (pidfd < 0) {
    kill(child, SIGKILL);
    Fail("pidfd_open", errno);
  }
  int listener = -1;
  if (o.deny_loopback) {
    close(hand[1]);
    int lfd = -1;
    ssize_t got;
    while ((got = read(hand[0], &lfd, sizeof lfd)) < 0 && errno == EINTR) {
    }
    // A child that died before sending leaves got 0: its exit is reported below.
    if (got == static_cast<ssize_t>(sizeof lfd)) {
      listener = PidfdGetfd(pidfd, lfd);
      if (listener < 0) {
        int err = errno;
        PidfdSignal(pidfd, SIGKILL);
        Fail("pidfd_getfd", err);
      }
      if (write(hand[0], "k", 1) != 1) {
        PidfdSignal(pidfd, SIGKILL);
        Fail("loopback-guard", EPROTO);
      }
    }
    close(hand[0]);
  }
  LoopbackGuard guard(listener);
  char line[64];
  snprintf(line, sizeof line, "pid %d\n", child);
  Report(line);
  bool is_ready = false;
  for (;;) {
    struct pollfd p[4] = {{pidfd, POLLIN, 0}, {is_ready ? -1 : ready[0], POLLIN, 0}, {exit_fd, POLLIN, 0}, {listener, POLLIN, 0}};
    if (poll(p, 4, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[3].revents & POLLIN) {
      // A guard that cannot answer would leave the program hung in its call.
      if (!guard.Serve()) {
        PidfdSignal(pidfd, SIGKILL);
        listener = -1;
      }
    } else if (p[3].revents) {
      listener = -1;  // every filtered task is gone
    }
    if (p[0].revents) break;
    if (p[1].revents) {
      char buf[64];
      ssize_t n = read(ready[0], buf, sizeof buf);
      if (n > 0) {
        is_ready = true;
        Report("ready\n");
        close(g_report);
        g_report = -1;
      } else if (n == 0) {
        close(ready[0]);  // closed unready: its exit tells why
        ready[0] = -1;
        is_ready = true;  // (stop polling it)
      }
    }
    if (p[2].revents) {
      // The keeper let go: the pod's namespace is gone, so is the program.
      PidfdSignal(pidfd, SIGTERM);
      if (!WaitGone(pidfd, 2000)) PidfdSignal(pidfd, SIGKILL);
      break;
    }
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) snprintf(line, sizeof line, "signal %d\n", WTERMSIG(status));
  else snprintf(line, sizeof line, "exit %d\n", WEXITSTATUS(status));
  Report(line);
  _exit(0);
}

// Ignored signals stay ignored through execve. Node ignores SIGPIPE and
// SIGXFSZ, and glibc's posix_spawn leaves its two internal signals (32, 33)
// ignored in the child, which a program that is not glibc's (a Go plugin)
// then keeps: every signal goes back to its default. The raw call reaches
// the internal ones, which sigaction() refuses; an all-zero kernel sigaction
// is SIG_DFL, no flags, empty mask on every architecture.
void DefaultSignals() {
  for (int sig = 1; sig < 65; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    unsigned long zero[8] = {};
    syscall(SYS_rt_sigaction, sig, zero, nullptr, 8);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Signal state is inherited through execve: start from the defaults.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  DefaultSignals();

  Options o = Parse(argc, argv);
  if (o.kill_pid) Kill(o);
  // A detached program's helper outlives its caller: no death signal.
  if (!o.detach) DieWithParent(o.parent);
  if (o.report_fd >= 0) {
    int fl = fcntl(o.report_fd, F_GETFD);
    if (fl < 0 || fcntl(o.report_fd, F_SETFD, fl | FD_CLOEXEC) < 0) Fail("fcntl", errno);
  }
  CloseFds(o.report_fd, static_cast<int>(o.keep_fds));
  if (o.detach) {
    Supervise(o);
    DieWithParent(o.parent);
  }

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
