// nstool-keeper: holds the pins of one unprivileged user. Without root a
// namespace cannot be bind-mounted in the host's mount namespace, so one
// long-lived process per user owns a user namespace (its own uid and gid
// mapped to 0) and a mount namespace, with a tmpfs on DIR/pins in which
// every pin of that user is a bind mount: DIR/pins/netns/NAME and
// DIR/pins/userns/NAME. The pins exist only in that mount namespace; from
// the host they are reached through /proc/PID/root/DIR/pins/..., or with
// `nsenter --user --mount --target PID`.
//
//   nstool-keeper start DIR
//
// forks the keeper, waits until it listens, prints "PID STARTTIME" (the
// starttime field of /proc/PID/stat, so a reused pid is told apart) and
// exits 0; on failure it prints "err STEP ERRNO" and exits 1. The keeper
// writes DIR/keeper.pid with the same line and listens on DIR/keeper.sock
// (SOCK_SEQPACKET; only peers with its own uid are served). One request per
// connection, one message each way:
//   ping                -> ok nstool-keeper PROTOCOL PID STARTTIME PINS
//   pin NAME  + 2 fds   -> ok PID STARTTIME      (a netns fd, then the userns fd)
//   unpin NAME          -> ok NETNS USERNS PINS  (1/0: that pin was there)
//   pinns KIND NAME + 1 fd -> ok PID STARTTIME   (KIND ipc or uts: a sandbox's
//                          namespaces made inside its userns, DIR/pins/KIND/NAME)
//   unpinns KIND NAME   -> ok EXISTED PINS       (KIND user, ipc or uts: that pin alone)
//   hold NAME + 1 fd    -> ok                    (kept open while pin NAME is:
//                          the write end of a pod's network process's exit
//                          pipe, which sees EOF when the pin or we are gone)
//   (any failure)       -> err STEP ERRNO
// After a pin or unpin that leaves no pin the keeper removes its socket and
// pid file and exits (the connection closes with it, so the client knows);
// with no pin it also exits after a while without requests, in case the
// client that started it never pinned. Plain libc, no Node.
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace {

constexpr int kProtocol = 2;
// No pin and no request this long: the client that started us is gone.
constexpr int kIdleMs = 30000;
// A client that connects and then says nothing does not hold us longer.
constexpr int kRequestTimeoutMs = 5000;
constexpr size_t kMaxRequest = 512;
constexpr size_t kMaxFds = 4;
// Held fds, one per pin at most: bounded by the pins themselves.
std::map<std::string, int> g_held;

struct Paths {
  std::string dir, sock, pidfile, pins, netns, userns, ipc, uts;
};

Paths g_paths;
std::string g_pidline;  // "PID STARTTIME\n", as in the pid file
ino_t g_sock_ino = 0;
int g_ready = -1;  // the launcher's pipe, until we are ready

// Before readiness every failure goes to the launcher, which reports it.
[[noreturn]] void StartFail(const char* step, int err) {
  if (g_ready >= 0) dprintf(g_ready, "err %s %d\n", step, err);
  _exit(1);
}

bool WriteFile(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = write(fd, text.data(), text.size());
  int err = errno;
  close(fd);
  errno = err;
  return n == static_cast<ssize_t>(text.size());
}

// Field 22 of /proc/self/stat: when this process started, in clock ticks.
std::string StartTime() {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) StartFail("stat", errno);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) StartFail("stat", n < 0 ? errno : EIO);
  buf[n] = '\0';
  // The command name may hold spaces: count fields after its ')'.
  char* p = strrchr(buf, ')');
  if (!p) StartFail("stat", EIO);
  int field = 2;
  for (char* tok = strtok(p + 1, " "); tok; tok = strtok(nullptr, " ")) {
    if (++field == 22) return tok;
  }
  StartFail("stat", EIO);
}

// ---- pins ----------------------------------------------------------------

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 255 || n == "." || n == "..") return false;
  for (char c : n)
    if (c == '/' || c == '\0' || c == '\n') return false;
  return true;
}

// A namespace fd of TYPE (CLONE_NEW*), else EINVAL.
bool IsNs(int fd, int type) {
  struct statfs sfs {};
  if (fstatfs(fd, &sfs) < 0) return false;
  if (static_cast<unsigned long>(sfs.f_type) != NSFS_MAGIC) {
    errno = EINVAL;
    return false;
  }
  int t = ioctl(fd, NS_GET_NSTYPE);
  if (t < 0) return false;
  if (t != type) {
    errno = EINVAL;
    return false;
  }
  return true;
}

// The file is made O_EXCL (a pin is never clobbered) and the namespace
// bind-mounted on it from the fd; on failure the file goes again.
bool PinFd(int fd, const std::string& target) {
  int f = open(target.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f < 0) return false;
  close(f);
  std::string src = "/proc/self/fd/" + std::to_string(fd);
  if (mount(src.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) < 0) {
    int err = errno;
    unlink(target.c_str());
    errno = err;
    return false;
  }
  return true;
}

// Detach + unlink; *existed says whether anything was there.
bool UnpinPath(const std::string& target, bool* existed) {
  *existed = false;
  if (umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
    *existed = true;
  } else if (errno != EINVAL && errno != ENOENT) {
    return false;
  }
  if (unlink(target.c_str()) == 0) {
    *existed = true;
  } else if (errno != ENOENT) {
    return false;
  }
  return true;
}

int CountDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  int n = 0;
  while (struct dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

int CountPins() {
  return CountDir(g_paths.netns) + CountDir(g_paths.userns) + CountDir(g_paths.ipc) + CountDir(g_paths.uts);
}

// The dir of one kind of pin and its CLONE_NEW* type; false for an unknown kind.
bool KindDir(const std::string& kind, std::string* dir, int* type) {
  if (kind == "net") *dir = g_paths.netns, *type = CLONE_NEWNET;
  else if (kind == "user") *dir = g_paths.userns, *type = CLONE_NEWUSER;
  else if (kind == "ipc") *dir = g_paths.ipc, *type = CLONE_NEWIPC;
  else if (kind == "uts") *dir = g_paths.uts, *type = CLONE_NEWUTS;
  else return false;
  return true;
}

// ---- requests --------------------------------------------------------------

std::string Err(const char* step, int err) { return std::string("err ") + step + " " + std::to_string(err) + "\n"; }

std::string Pin(const std::string& name, const int* fds, size_t nfds) {
  if (nfds != 2) return Err("request", EINVAL);
  // The owner is not checked here: from inside our own user namespace the
  // kernel will not name a sibling one (NS_GET_USERNS gives EPERM). The
  // client took both fds from one helper process.
  if (!IsNs(fds[0], CLONE_NEWNET)) return Err("check-netns", errno);
  if (!IsNs(fds[1], CLONE_NEWUSER)) return Err("check-userns", errno);
  const std::string net = g_paths.netns + "/" + name, user = g_paths.userns + "/" + name;
  if (!PinFd(fds[0], net)) return Err("pin-netns", errno);
  if (!PinFd(fds[1], user)) {
    int err = errno;
    bool ignored;
    UnpinPath(net, &ignored);
    return Err("pin-userns", err);
  }
  return "ok " + g_pidline;
}

// Keeps FD while pin NAME exists; a second hold for NAME replaces (closes)
// the first: one network process per pod.
std::string Hold(const std::string& name, int* fds, size_t* nfds) {
  if (*nfds != 1) return Err("request", EINVAL);
  struct stat st {};
  if (lstat((g_paths.netns + "/" + name).c_str(), &st) < 0) return Err("hold", errno);
  auto it = g_held.find(name);
  if (it != g_held.end()) close(it->second);
  g_held[name] = fds[0];
  *nfds = 0;  // ours now: not closed with the request
  return "ok\n";
}

void Release(const std::string& name) {
  auto it = g_held.find(name);
  if (it == g_held.end()) return;
  close(it->second);
  g_held.erase(it);
}

std::string Unpin(const std::string& name) {
  Release(name);
  bool net = false, user = false;
  if (!UnpinPath(g_paths.netns + "/" + name, &net)) return Err("unpin-netns", errno);
  if (!UnpinPath(g_paths.userns + "/" + name, &user)) return Err("unpin-userns", errno);
  return "ok " + std::to_string(net) + " " + std::to_string(user) + " " + std::to_string(CountPins()) + "\n";
}

// ARG is "KIND NAME"; only ipc and uts are pinned alone (a netns and its
// userns go together, by pin).
std::string PinOne(const std::string& arg, const int* fds, size_t nfds) {
  size_t sp = arg.find(' ');
  std::string kind = arg.substr(0, sp), name = sp == std::string::npos ? "" : arg.substr(sp + 1), dir;
  int type = 0;
  if (nfds != 1 || (kind != "ipc" && kind != "uts") || !ValidName(name) || !KindDir(kind, &dir, &type)) return Err("request", EINVAL);
  if (!IsNs(fds[0], type)) return Err("check-ns", errno);
  if (!PinFd(fds[0], dir + "/" + name)) return Err("pin-ns", errno);
  return "ok " + g_pidline;
}

std::string UnpinOne(const std::string& arg, size_t nfds) {
  size_t sp = arg.find(' ');
  std::string kind = arg.substr(0, sp), name = sp == std::string::npos ? "" : arg.substr(sp + 1), dir;
  int type = 0;
  // A netns goes with its userns, by unpin.
  if (nfds != 0 || kind == "net" || !ValidName(name) || !KindDir(kind, &dir, &type)) return Err("request", EINVAL);
  bool existed = false;
  if (!UnpinPath(dir + "/" + name, &existed)) return Err("unpin-ns", errno);
  return "ok " + std::to_string(existed) + " " + std::to_string(CountPins()) + "\n";
}

// Serves one connection; true when it was a pin or an unpin (the count may
// have changed).
bool Serve(int conn) {
  struct ucred cr {};
  socklen_t len = sizeof cr;
  auto reply = [conn](const std::string& text) { send(conn, text.data(), text.size(), MSG_NOSIGNAL); };
  // Our uid is 0 here; a peer of the same host uid shows as 0 too, any
  // other (another user, a pod's ids) as the overflow uid.
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.uid != geteuid()) {
    reply(Err("peer", EACCES));
    return false;
  }
  struct timeval tv {kRequestTimeoutMs / 1000, 0};
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  char buf[kMaxRequest + 1];
  struct iovec iov {buf, kMaxRequest};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  int fds[kMaxFds];
  size_t nfds = 0;
  if (n > 0) {
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count && nfds < kMaxFds; i++) memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
  }
  struct Closer {
    int* fds;
    size_t* n;
    ~Closer() {
      for (size_t i = 0; i < *n; i++) close(fds[i]);
    }
  } closer{fds, &nfds};
  if (n <= 0) return false;
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    reply(Err("request", EPROTO));
    return false;
  }
  std::string req(buf, static_cast<size_t>(n));
  if (req.back() != '\n' || req.find('\0') != std::string::npos) {
    reply(Err("request", EPROTO));
    return false;
  }
  req.pop_back();
  std::string verb = req.substr(0, req.find(' '));
  std::string arg = req.size() > verb.size() ? req.substr(verb.size() + 1) : "";
  if (verb == "ping" && arg.empty() && nfds == 0) {
    reply("ok nstool-keeper " + std::to_string(kProtocol) + " " + g_pidline.substr(0, g_pidline.size() - 1) + " " +
          std::to_string(CountPins()) + "\n");
    return false;
  }
  if (verb == "pinns" || verb == "unpinns") {
    reply(verb == "pinns" ? PinOne(arg, fds, nfds) : UnpinOne(arg, nfds));
    return true;
  }
  if (verb == "hold" && ValidName(arg)) {
    reply(Hold(arg, fds, &nfds));
    return false;
  }
  if ((verb == "pin" || verb == "unpin") && ValidName(arg)) {
    reply(verb == "pin" ? Pin(arg, fds, nfds) : (nfds ? Err("request", EINVAL) : Unpin(arg)));
    return true;
  }
  reply(Err("request", EINVAL));
  return false;
}

// Leaves nothing behind but what a later keeper would make anew. The
// socket and pid file are removed only while they are still ours.
[[noreturn]] void Exit() {
  struct stat st {};
  if (lstat(g_paths.sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == g_sock_ino) unlink(g_paths.sock.c_str());
  char buf[64];
  int fd = open(g_paths.pidfile.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n == static_cast<ssize_t>(g_pidline.size()) && memcmp(buf, g_pidline.data(), n) == 0) unlink(g_paths.pidfile.c_str());
  }
  _exit(0);
}

[[noreturn]] void Loop(int listener) {
  for (;;) {
    struct pollfd p {listener, POLLIN, 0};
    int r = poll(&p, 1, CountPins() == 0 ? kIdleMs : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 && CountPins() == 0) Exit();
    if (r <= 0) continue;
    int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;  // the client gave up meanwhile, or out of fds
    // The connection of a request that left no pin stays open until we
    // are gone: its EOF tells the client the keeper has exited.
    if (Serve(conn) && CountPins() == 0) Exit();
    close(conn);
  }
}

[[noreturn]] void Daemon(uid_t uid, gid_t gid) {
  // Our own session: a terminal's signals and hangup never reach us.
  if (setsid() < 0) StartFail("setsid", errno);
  umask(077);
  // A single-threaded process may make a user namespace; the mount
  // namespace made with it is owned by it, so we may mount there.
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) StartFail("unshare", errno);
  // Only our own ids, mapped to 0 (nsenter --user makes its caller uid 0);
  // an unprivileged map of the gid needs setgroups denied first.
  if (!WriteFile("/proc/self/setgroups", "deny")) StartFail("setgroups", errno);
  if (!WriteFile("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n")) StartFail("uid-map", errno);
  if (!WriteFile("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) StartFail("gid-map", errno);
  // The pins live on a tmpfs of our own: nothing of them is on the host's
  // disk, and they go with this mount namespace whatever way we end.
  if (mount("tmpfs", g_paths.pins.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=64k") < 0)
    StartFail("mount-pins", errno);
  if (mkdir(g_paths.netns.c_str(), 0700) < 0) StartFail("mkdir", errno);
  if (mkdir(g_paths.userns.c_str(), 0700) < 0) StartFail("mkdir", errno);
  if (mkdir(g_paths.ipc.c_str(), 0700) < 0) StartFail("mkdir", errno);
  if (mkdir(g_paths.uts.c_str(), 0700) < 0) StartFail("mkdir", errno);

  int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (listener < 0) StartFail("socket", errno);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, g_paths.sock.data(), g_paths.sock.size());
  // A socket file left by a dead keeper was removed by the client that
  // started us (under its lock): one that is here now is a live keeper's.
  if (bind(listener, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0) StartFail("bind", errno);
  struct stat st {};
  if (lstat(g_paths.sock.c_str(), &st) < 0) StartFail("bind", errno);
  g_sock_ino = st.st_ino;
  if (listen(listener, 64) < 0) StartFail("listen", errno);

  g_pidline = std::to_string(getpid()) + " " + StartTime() + "\n";
  std::string tmp = g_paths.pidfile + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) StartFail("pidfile", errno);
  bool ok = write(fd, g_pidline.data(), g_pidline.size()) == static_cast<ssize_t>(g_pidline.size());
  int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), g_paths.pidfile.c_str()) < 0) StartFail("pidfile", ok ? errno : err);

  if (chdir("/") < 0) StartFail("chdir", errno);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) StartFail("open", errno);
  for (int i = 0; i < 3; i++)
    if (dup2(null, i) < 0) StartFail("dup2", errno);
  close(null);
  dprintf(g_ready, "ok %s", g_pidline.c_str() + g_pidline.find(' ') + 1);
  close(g_ready);
  g_ready = -1;
  Loop(listener);
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (argc != 3 || strcmp(argv[1], "start") != 0 || argv[2][0] != '/') {
    printf("err usage %d\n", EINVAL);
    return 2;
  }
  g_paths.dir = argv[2];
  g_paths.sock = g_paths.dir + "/keeper.sock";
  g_paths.pidfile = g_paths.dir + "/keeper.pid";
  g_paths.pins = g_paths.dir + "/pins";
  g_paths.netns = g_paths.pins + "/netns";
  g_paths.userns = g_paths.pins + "/userns";
  g_paths.ipc = g_paths.pins + "/ipc";
  g_paths.uts = g_paths.pins + "/uts";
  if (g_paths.sock.size() >= sizeof(sockaddr_un{}.sun_path)) {
    printf("err socket-path %d\n", ENAMETOOLONG);
    return 1;
  }
  // Read before the unshare: after it, until the maps are written, both
  // show as the overflow id.
  uid_t uid = getuid();
  gid_t gid = getgid();

  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    printf("err pipe2 %d\n", errno);
    return 1;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    printf("err fork %d\n", errno);
    return 1;
  }
  if (pid == 0) {
    close(p[0]);
    g_ready = p[1];
    Daemon(uid, gid);
  }
  close(p[1]);
  char buf[128];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(p[0], buf + got, sizeof buf - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
    if (got == sizeof buf - 1) break;
  }
  buf[got] = '\0';
  close(p[0]);
  if (strncmp(buf, "ok ", 3) == 0) {
    printf("%d %s", pid, buf + 3);
    return 0;
  }
  // It failed and exits (or died): reap it, then say why.
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got == 0) {
    printf("err died %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  } else {
    fputs(buf, stdout);
  }
  return 1;
}
