#include "keeper_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "fd.h"

namespace nstool {

namespace {

constexpr size_t kMaxFds = 4;
constexpr size_t kMaxReply = 4096;

// A timed-out blocking call on the socket fails with EAGAIN: say ETIMEDOUT.
[[noreturn]] void ThrowIo(const char* syscall, const std::string& path) {
  int err = errno;
  if (err == EAGAIN) err = ETIMEDOUT;
  // The keeper went away before reading the request: same as no reply.
  if (err == EPIPE) err = ECONNRESET;
  Throw(syscall, path, err);
}

// Closes every fd a message carried (none is expected back).
void CloseCarried(struct msghdr* m) {
  for (struct cmsghdr* c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      close(fd);
    }
  }
}

}  // namespace

std::string KeeperCall(const std::string& socket_path, const std::string& request,
                       const std::vector<int>& fds, int timeout_ms) {
  if (fds.size() > kMaxFds) Throw("sendmsg", socket_path, EINVAL);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) Throw("connect", socket_path, ENAMETOOLONG);
  memcpy(addr.sun_path, socket_path.data(), socket_path.size());

  Fd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s.valid()) Throw("socket", socket_path);
  // On a unix socket the send timeout bounds connect() (a full backlog)
  // and sendmsg(); the receive timeout bounds each recvmsg().
  struct timeval tv {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  if (setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
      setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
    Throw("setsockopt", socket_path);
  while (connect(s.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0) {
    if (errno != EINTR) ThrowIo("connect", socket_path);
  }

  struct iovec iov {const_cast<char*>(request.data()), request.size()};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  while (sendmsg(s.get(), &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) ThrowIo("sendmsg", socket_path);
  }

  // One reply message, then EOF.
  std::string reply;
  bool got = false;
  for (;;) {
    char buf[kMaxReply];
    struct iovec riov {buf, sizeof buf};
    struct msghdr rmsg {};
    rmsg.msg_iov = &riov;
    rmsg.msg_iovlen = 1;
    alignas(struct cmsghdr) char rcontrol[CMSG_SPACE(sizeof(int) * kMaxFds)];
    rmsg.msg_control = rcontrol;
    rmsg.msg_controllen = sizeof rcontrol;
    ssize_t n = recvmsg(s.get(), &rmsg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n >= 0) CloseCarried(&rmsg);
    if (n < 0 && !(got && errno == ECONNRESET)) {
      if (errno == ECONNRESET || errno == EPIPE) Throw("recvmsg", socket_path, ECONNRESET);
      ThrowIo("recvmsg", socket_path);
    }
    if (n <= 0) {
      if (!got) Throw("recvmsg", socket_path, ECONNRESET);
      break;
    }
    if (got || (rmsg.msg_flags & MSG_TRUNC)) Throw("recvmsg", socket_path, EPROTO);
    reply.assign(buf, static_cast<size_t>(n));
    got = true;
  }
  return reply;
}

}  // namespace nstool
