#include "pin.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "errors.h"
#include "fd.h"

namespace nstool {

namespace {

bool IsMountRoot(const std::string& dir) {
  struct statx stx {};
  if (statx(AT_FDCWD, dir.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0)
    Throw("statx", dir);
  if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
    return stx.stx_attributes & STATX_ATTR_MOUNT_ROOT;
  // Kernels before 5.8 do not report the attribute: compare with the parent.
  struct stat self {}, parent {};
  if (stat(dir.c_str(), &self) < 0) Throw("stat", dir);
  std::string up = dir + "/..";
  if (stat(up.c_str(), &parent) < 0) Throw("stat", up);
  return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

// Detaches every mount directly in the directory DIR_FD names. DIR_FD was
// opened before DIR got a mount of its own, so it still reaches the mounts
// that mount now covers.
void DetachCovered(int dir_fd, const std::string& dir) {
  struct statx parent {};
  if (statx(dir_fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &parent) < 0) Throw("statx", dir);
  Fd list(openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!list.valid()) Throw("openat", dir);
  DIR* d = fdopendir(list.get());
  if (d == nullptr) Throw("fdopendir", dir);
  list.release();
  std::unique_ptr<DIR, int (*)(DIR*)> closer(d, closedir);
  const std::string base = "/proc/self/fd/" + std::to_string(dir_fd) + "/";
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct statx stx {};
    if (statx(dir_fd, e->d_name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0) continue;  // gone meanwhile
    bool mounted = (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
                       ? (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0
                       : stx.stx_dev_major != parent.stx_dev_major || stx.stx_dev_minor != parent.stx_dev_minor;
    if (!mounted) continue;
    std::string covered = base + e->d_name;
    if (umount2(covered.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
      Throw("umount2", dir + "/" + e->d_name);
  }
}

}  // namespace

void EnsurePinDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) Throw("mkdir", dir);
  // Refuse a symlink or a non-directory in place of the pin dir.
  Fd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d.valid()) Throw("open", dir);
  if (IsMountRoot(dir)) {
    // Already a mount point (ours or iproute2's): only ensure it is shared.
    if (mount("none", dir.c_str(), nullptr, MS_SHARED, nullptr) < 0) Throw("mount", dir);
    return;
  }
  // MS_REC: pins already mounted in the dir come along; a plain bind would
  // cover them and leave only their empty files visible. The originals, now
  // covered, are detached: each would keep its namespace alive after an
  // unpin and make the unlink fail (EBUSY).
  if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) < 0) Throw("mount", dir, errno, dir);
  DetachCovered(d.get(), dir);
  if (mount("none", dir.c_str(), nullptr, MS_PRIVATE, nullptr) < 0) Throw("mount", dir);
  if (mount("none", dir.c_str(), nullptr, MS_SHARED, nullptr) < 0) Throw("mount", dir);
}

void Pin(const std::string& src, const std::string& target) {
  Fd f(open(target.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0));
  if (!f.valid()) Throw("open", target);
  f.reset();
  if (mount(src.c_str(), target.c_str(), "none", MS_BIND, nullptr) < 0) {
    int err = errno;
    unlink(target.c_str());
    Throw("mount", src, err, target);
  }
}

void PinOwner(const std::string& ns_path, const std::string& target) {
  Fd ns(open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) Throw("open", ns_path);
  Fd owner(ioctl(ns.get(), NS_GET_USERNS));
  if (!owner.valid()) Throw("ioctl", ns_path);
  Pin("/proc/self/fd/" + std::to_string(owner.get()), target);
}

bool Unmount(const std::string& target) {
  if (umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) return true;
  if (errno == EINVAL || errno == ENOENT) return false;  // nothing mounted there
  Throw("umount2", target);
}

UnpinResult Unpin(const std::string& target) {
  // A namespace mounted here is a pin: detach it and remove the file. Only
  // an nsfs mount is detached, so a directory or a bind-mounted file given
  // by mistake is never unmounted. statfs follows a symlink, but
  // UMOUNT_NOFOLLOW then refuses it and the checks below report ELOOP.
  struct statfs sfs {};
  if (statfs(target.c_str(), &sfs) == 0 && static_cast<unsigned long>(sfs.f_type) == NSFS_MAGIC &&
      Unmount(target)) {
    if (unlink(target.c_str()) < 0 && errno != ENOENT) Throw("unlink", target);
    return {true, true};
  }
  struct stat st {};
  if (lstat(target.c_str(), &st) < 0) {
    if (errno == ENOENT) return {false, false};
    Throw("lstat", target);
  }
  if (S_ISLNK(st.st_mode)) Throw("lstat", target, ELOOP);
  // With no namespace mounted only the empty file a pin leaves is removed:
  // anything else at that path is not ours to unlink.
  if (!S_ISREG(st.st_mode) || st.st_size != 0) Throw("unlink", target, ENOTEMPTY);
  UnpinResult r{false, false};
  if (unlink(target.c_str()) == 0) {
    r.removed = true;
  } else if (errno != ENOENT) {
    Throw("unlink", target);
  }
  return r;
}

std::optional<std::vector<UnpinResult>> UnpinAll(const std::vector<std::string>& targets, const std::string& guard, bool keep_going) {
  if (!guard.empty() && access(guard.c_str(), F_OK) == 0) return std::nullopt;
  std::vector<UnpinResult> out;
  out.reserve(targets.size());
  std::optional<SysError> first;
  for (size_t i = 0; i < targets.size(); i++) {
    const std::string& t = targets[i];
    try {
      // Targets after the first are usually absent (a pod's userns pin):
      // one lstat says so, where Unpin would ask statfs first, then lstat.
      struct stat st {};
      if (i > 0 && lstat(t.c_str(), &st) < 0 && errno == ENOENT) {
        out.push_back({false, false});
        continue;
      }
      out.push_back(Unpin(t));
    } catch (const SysError& e) {
      if (!keep_going) throw;
      if (!first) first = e;
      out.push_back({false, false});
    }
  }
  if (first) throw *first;
  return out;
}

}  // namespace nstool
