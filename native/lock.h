#pragma once
#include <string>

namespace nstool {

// flock(LOCK_EX) on PATH (created 0600, O_NOFOLLOW). Returns the fd that
// holds the lock; the kernel drops the lock when the holder dies, which is
// what lets gc tell an interrupted create from one still running.
// With wait=false a held lock fails with EWOULDBLOCK.
int LockFile(const std::string& path, bool wait);
void CloseFd(int fd);

}  // namespace nstool
