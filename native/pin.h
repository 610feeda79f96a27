#pragma once
#include <optional>
#include <string>
#include <vector>

namespace nstool {

// Makes DIR (created 0755 if missing) a mount point of its own with shared
// propagation, as `ip netns` does, so pins propagate into mount namespaces
// created later. Exactly one mount per pin: the bind of DIR onto itself is
// made private before shared so it does not join the parent's peer group.
void EnsurePinDir(const std::string& dir);

// Creates TARGET with O_CREAT|O_EXCL|O_NOFOLLOW (never clobbers) and bind
// mounts SRC (a namespace file, or /proc/self/fd/N) onto it. On failure the
// file it created is removed.
void Pin(const std::string& src, const std::string& target);

struct UnpinResult {
  bool unmounted;  // a mount was detached
  bool removed;    // the file was unlinked
};
// umount2(MNT_DETACH|UMOUNT_NOFOLLOW) + unlink. A missing file or a file with
// nothing mounted is not an error (already gone / stale). A symlink is
// refused with ELOOP, and a file with content (not a pin) with ENOTEMPTY;
// both are left alone.
UnpinResult Unpin(const std::string& target);

// Unpin of each of TARGETS in order, as one call (one trip to the pool for a
// pod's netns and userns pins). When GUARD is not empty and exists
// (access F_OK), nothing is touched and there is no result: the caller
// must do the work another way (under the id allocator's lock). With
// KEEP_GOING every target is tried and the first error is thrown at the end;
// without it the first error stops the rest. A missing target after the
// first costs one lstat.
std::optional<std::vector<UnpinResult>> UnpinAll(const std::vector<std::string>& targets, const std::string& guard, bool keep_going);

// Pins the user namespace that owns the namespace at NS_PATH (NS_GET_USERNS)
// to TARGET, straight from the fd the ioctl returns.
void PinOwner(const std::string& ns_path, const std::string& target);

// Detaches whatever is mounted at TARGET (no unlink). False when nothing was.
bool Unmount(const std::string& target);

}  // namespace nstool
