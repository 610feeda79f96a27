// Opening a file inside a tenant's root filesystem without leaving it. The
// tenant may rename and relink anything under ROOT while we look, so the
// lookup is one kernel call scoped to a root fd (openat2 RESOLVE_IN_ROOT),
// never a path checked in one call and opened in another.
#include "rootfs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <deque>
#include <vector>

#include "errors.h"
#include "fd.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

namespace nstool {
namespace {

constexpr int kMaxLinks = 40;       // the kernel's MAXSYMLINKS
constexpr int kAgainRetries = 32;   // openat2 says EAGAIN when a rename raced a ".."

struct NotFound {};  // ENOENT/ENOTDIR while resolving: the file is not there

std::string Shown(const std::string& root, const std::string& path) {
  size_t i = path.find_first_not_of('/');
  std::string rel = i == std::string::npos ? "" : path.substr(i);
  if (rel.empty()) return root;
  return root.size() > 0 && root.back() == '/' ? root + rel : root + "/" + rel;
}

[[noreturn]] void Fail(const char* syscall, const std::string& shown, int err = errno) {
  if (err == ENOENT || err == ENOTDIR) throw NotFound{};
  Throw(syscall, shown, err);
}

// ---- openat2 -----------------------------------------------------------------

// Returns -1 when openat2 cannot be used here (ENOSYS, or EPERM from an old
// seccomp filter) and the caller may fall back to the walk.
int Openat2(int rootfd, const std::string& path, const std::string& shown, bool may_fall_back) {
  struct open_how how {};
  how.flags = O_PATH | O_CLOEXEC;
  // Not RESOLVE_NO_XDEV: mounts below ROOT are part of the tree the tenant
  // sees; RESOLVE_IN_ROOT alone already keeps every step under ROOT.
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int i = 0;; i++) {
    long fd = syscall(SYS_openat2, rootfd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == EINTR || (errno == EAGAIN && i < kAgainRetries)) continue;
    if (may_fall_back && (errno == ENOSYS || errno == EPERM)) return -1;
    Fail("openat2", shown);
  }
}

// ---- the O_PATH walk (kernels and seccomp filters without openat2) -----------

// Components of P; a trailing "/" becomes a final "." so that, as for the
// kernel, "file/" asks for a directory.
void Split(const std::string& p, std::deque<std::string>& out, bool front) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) parts.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  if (!parts.empty() && p.back() == '/') parts.push_back(".");
  if (front) out.insert(out.begin(), parts.begin(), parts.end());
  else out.insert(out.end(), parts.begin(), parts.end());
}

std::string ReadLink(int fd, const std::string& shown) {
  char buf[PATH_MAX];
  ssize_t n = readlinkat(fd, "", buf, sizeof buf);
  if (n < 0) Throw("readlinkat", shown);
  if (static_cast<size_t>(n) >= sizeof buf) Throw("readlinkat", shown, ENAMETOOLONG);
  return std::string(buf, static_cast<size_t>(n));
}

// Each component is opened O_PATH|O_NOFOLLOW relative to the fd of its
// parent; a symlink's text is spliced into the components still to walk
// (an absolute one restarts at ROOT). ".." pops to the fd we came from, so
// it never climbs above ROOT nor follows a directory someone moved away.
// Unlike the kernel, every symlink on procfs is refused (ELOOP), not only
// the magic ones.
int Walk(int rootfd, const std::string& path, const std::string& shown) {
  std::vector<Fd> dirs;  // the walk so far below ROOT
  std::deque<std::string> todo;
  if (path.empty()) Fail("openat", shown, ENOENT);
  Split(path, todo, false);
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;  // the component before it was checked to be a dir
    if (c == "..") {
      if (!dirs.empty()) dirs.pop_back();
      continue;
    }
    int at = dirs.empty() ? rootfd : dirs.back().get();
    Fd fd(openat(at, c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) Fail("openat", shown);
    struct stat st;
    if (fstat(fd.get(), &st) < 0) Throw("fstat", shown);
    if (S_ISLNK(st.st_mode)) {
      struct statfs sfs;
      if (fstatfs(fd.get(), &sfs) < 0) Throw("fstatfs", shown);
      if (sfs.f_type == PROC_SUPER_MAGIC || ++links > kMaxLinks) Throw("openat", shown, ELOOP);
      std::string target = ReadLink(fd.get(), shown);
      if (target.empty()) Fail("openat", shown, ENOENT);
      if (target[0] == '/') dirs.clear();
      Split(target, todo, true);
      continue;
    }
    if (!todo.empty() && !S_ISDIR(st.st_mode)) Fail("openat", shown, ENOTDIR);
    dirs.push_back(std::move(fd));
  }
  if (dirs.empty()) {  // PATH names ROOT itself
    int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) Throw("fcntl", shown);
    return fd;
  }
  return dirs.back().release();
}

// ---- reading -----------------------------------------------------------------

// Reopens the O_PATH fd through /proc for reading: the same inode, with no
// second lookup by name that a rename could redirect.
void ReadRegular(int opath, const struct stat& st, size_t max_bytes, const std::string& shown,
                 RootFile& out) {
  std::string self = "/proc/self/fd/" + std::to_string(opath);
  Fd fd(open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) Throw("open", self);
  struct stat again;
  if (fstat(fd.get(), &again) < 0) Throw("fstat", shown);
  if (again.st_dev != st.st_dev || again.st_ino != st.st_ino) Throw("open", shown, ESTALE);
  // Read to EOF, not to st_size: the file may grow meanwhile.
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Throw("read", shown);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > max_bytes) return;  // too large: out.read stays false
  }
  out.data = std::move(data);
  out.read = true;
}

}  // namespace

RootFile ReadInRoot(const std::string& root, const std::string& path, size_t max_bytes,
                    ResolveHow how) {
  RootFile out;
  const std::string shown = Shown(root, path);
  try {
    Fd rootfd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!rootfd.valid()) Fail("open", root);
    Fd file;
    if (how != ResolveHow::kWalk) {
      file.reset(Openat2(rootfd.get(), path, shown, how == ResolveHow::kAuto));
    }
    if (!file.valid()) file.reset(Walk(rootfd.get(), path, shown));

    struct stat st;
    if (fstat(file.get(), &st) < 0) Throw("fstat", shown);
    out.found = true;
    out.mode = st.st_mode;
    out.size = static_cast<uint64_t>(st.st_size);
    if (S_ISREG(st.st_mode) && out.size <= max_bytes) ReadRegular(file.get(), st, max_bytes, shown, out);
  } catch (const NotFound&) {
    return RootFile{};
  }
  return out;
}

}  // namespace nstool
