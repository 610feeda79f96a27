#pragma once
#include <string>

namespace nstool {

// flock(LOCK_EX) on PATH (created 0600, O_NOFOLLOW). Returns the fd that
// holds the lock; the kernel drops the lock when the holder dies, which is
// what lets gc tell an interrupted create from one still running.
// With wait=false a held lock fails with EWOULDBLOCK.
int LockFile(const std::string& path, bool wait);
void CloseFd(int fd);

// An inotify fd (non-blocking, close-on-exec). A lock holder watches the
// dirs it changes to learn whether anyone else changed them meanwhile. The
// fd is meant to be kept: closing one waits for an RCU grace period (ms).
int InotifyInit();
// Watches names created, deleted or moved in DIR, and DIR itself going
// away; returns the watch descriptor (the same one for a dir watched twice).
int InotifyWatchDir(int fd, const std::string& dir);
// Every event queued on the inotify FD (struct inotify_event records), ""
// when there are none. No exception for the empty queue: that is the
// common case, and a JS exception per call costs more than the read.
std::string InotifyRead(int fd);

}  // namespace nstool
