#include "lock.h"

#include <fcntl.h>
#include <sys/file.h>
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

}  // namespace nstool
