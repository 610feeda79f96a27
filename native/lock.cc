#include "lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"
#include "fd.h"

namespace nstool {

int LockFile(const std::string& path, bool wait) {
  Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) Throw("open", path);
  int r;
  while ((r = flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR) {
  }
  if (r < 0) Throw("flock", path);
  return fd.release();
}

void CloseFd(int fd) {
  if (close(fd) < 0) Throw("close");
}

int InotifyInit() {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) Throw("inotify_init1");
  return fd;
}

int InotifyWatchDir(int fd, const std::string& dir) {
  constexpr uint32_t kMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                             IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW;
  int wd = inotify_add_watch(fd, dir.c_str(), kMask);
  if (wd < 0) Throw("inotify_add_watch", dir);
  return wd;
}

std::string InotifyRead(int fd) {
  std::string out;
  alignas(struct inotify_event) char buf[16 * 1024];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) Throw("read", "inotify");
    if (n == 0) break;
    out.append(buf, n);
  }
  return out;
}

}  // namespace nstool
