#include "nsinfo.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "fd.h"

#ifndef NS_GET_ID
#define NS_GET_ID _IOR(0xb7, 0xd, uint64_t)
#endif

namespace nstool {

uint64_t NsIdOf(int fd) {
  uint64_t id = 0;
  return ioctl(fd, NS_GET_ID, &id) == 0 ? id : 0;
}

NsInfo InspectNs(const std::string& path, bool nofollow) {
  NsInfo info;
  // O_NONBLOCK: a FIFO (or a device) where a namespace should be must not
  // hang the caller in open(); fstatfs below then says it is no namespace.
  Fd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0)));
  if (!fd.valid()) Throw("open", path);
  struct stat st {};
  if (fstat(fd.get(), &st) < 0) Throw("fstat", path);
  info.ino = st.st_ino;
  info.dev = st.st_dev;
  struct statfs sfs {};
  if (fstatfs(fd.get(), &sfs) < 0) Throw("fstatfs", path);
  if (static_cast<unsigned long>(sfs.f_type) != NSFS_MAGIC) return info;
  info.nsfs = true;
  int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0) Throw("ioctl", path);
  info.type = type;
  info.id = NsIdOf(fd.get());
  Fd owner(ioctl(fd.get(), NS_GET_USERNS));
  if (!owner.valid()) {
    // EPERM: the owner lies outside our own userns (we are inside a pod).
    if (errno == EPERM) return info;
    Throw("ioctl", path);
  }
  // ioctl-returned fds are already O_CLOEXEC.
  if (fstat(owner.get(), &st) < 0) Throw("fstat", path);
  info.has_owner = true;
  info.owner_ino = st.st_ino;
  info.owner_dev = st.st_dev;
  uid_t uid = 0;
  if (ioctl(owner.get(), NS_GET_OWNER_UID, &uid) < 0) Throw("ioctl", path);
  info.owner_uid = uid;
  info.owner_id = NsIdOf(owner.get());
  return info;
}

namespace {

enum Step : int { kSetns = 1, kReadMaps };

struct ChildReport {
  int step;
  int err;
};

// Reads a small /proc file into buf; -1 on error. Async-signal-safe.
ssize_t Slurp(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int e = errno;
      close(fd);
      errno = e;
      return r < 0 ? -1 : static_cast<ssize_t>(n);
    }
    n += r;
    if (n == cap) break;
  }
  close(fd);
  return n;
}

bool WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    len -= w;
  }
  return true;
}

}  // namespace

IdMaps ReadIdMaps(const std::string& path, bool owner) {
  Fd ns(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!ns.valid()) Throw("open", path);
  Fd user;
  if (owner) {
    user.reset(ioctl(ns.get(), NS_GET_USERNS));
    if (!user.valid()) Throw("ioctl", path);
  } else {
    user = std::move(ns);
  }
  // setns() into one's own userns is EINVAL: read our own maps directly.
  struct stat target {}, self {};
  if (fstat(user.get(), &target) < 0) Throw("fstat", path);
  if (stat("/proc/self/ns/user", &self) < 0) Throw("stat", "/proc/self/ns/user");
  if (target.st_ino == self.st_ino && target.st_dev == self.st_dev) {
    IdMaps m;
    static const char* const files[3] = {"/proc/self/uid_map", "/proc/self/gid_map", "/proc/self/setgroups"};
    std::string* out[3] = {&m.uid_map, &m.gid_map, &m.setgroups};
    for (int i = 0; i < 3; i++) {
      char buf[4096 * 4];
      ssize_t n = Slurp(files[i], buf, sizeof buf);
      if (n < 0) Throw("read", files[i]);
      out[i]->assign(buf, n);
    }
    return m;
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) Throw("pipe2");
  Fd rd(p[0]), wr(p[1]);

  pid_t pid = fork();
  if (pid < 0) Throw("fork");
  if (pid == 0) {
    // Child: single-threaded copy; async-signal-safe calls only.
    static char buf[3][4096 * 4];
    ChildReport rep{kSetns, 0};
    ssize_t n[3] = {0, 0, 0};
    if (setns(user.get(), CLONE_NEWUSER) < 0) {
      rep.err = errno;
    } else {
      rep.step = kReadMaps;
      const char* files[3] = {"/proc/self/uid_map", "/proc/self/gid_map", "/proc/self/setgroups"};
      for (int i = 0; i < 3 && rep.err == 0; i++) {
        n[i] = Slurp(files[i], buf[i], sizeof buf[i]);
        if (n[i] < 0) rep.err = errno;
      }
    }
    bool ok = WriteAll(wr.get(), &rep, sizeof rep);
    for (int i = 0; ok && rep.err == 0 && i < 3; i++)
      ok = WriteAll(wr.get(), &n[i], sizeof n[i]) && WriteAll(wr.get(), buf[i], n[i]);
    _exit(ok ? 0 : 1);
  }
  wr.reset();
  std::string all;
  char chunk[8192];
  for (;;) {
    ssize_t r = read(rd.get(), chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    all.append(chunk, r);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ChildReport rep{};
  if (all.size() < sizeof rep) Throw("fork", path, EIO);
  memcpy(&rep, all.data(), sizeof rep);
  if (rep.err != 0) Throw(rep.step == kSetns ? "setns" : "read", path, rep.err);
  IdMaps m;
  std::string* out[3] = {&m.uid_map, &m.gid_map, &m.setgroups};
  size_t off = sizeof rep;
  for (int i = 0; i < 3; i++) {
    ssize_t n = 0;
    if (all.size() < off + sizeof n) Throw("read", path, EIO);
    memcpy(&n, all.data() + off, sizeof n);
    off += sizeof n;
    if (n < 0 || all.size() < off + n) Throw("read", path, EIO);
    out[i]->assign(all.data() + off, n);
    off += n;
  }
  return m;
}

}  // namespace nstool
