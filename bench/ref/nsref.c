/*
 * C reference for nstool's benchmarks: the same syscalls nstool's core makes,
 * with nothing around them. Prints one line of per-cycle latencies (ns).
 *
 *   nsref pin DIR SRC N      open O_EXCL + bind mount SRC + umount2 + unlink, N times
 *   nsref create DIR N       clone(VM|NEWUSER|NEWNET) helper, maps, pin, kill, reap, unpin
 *   nsref create-cpu DIR N   the same, the helper started on this CPU (as nstool's core does:
 *                            the caller's affinity narrowed to its CPU around the clone)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static void die(const char *what, const char *path) {
  fprintf(stderr, "nsref: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(1);
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void pin(const char *src, const char *target) {
  int fd = open(target, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0) die("open", target);
  close(fd);
  if (mount(src, target, "none", MS_BIND, NULL) < 0) die("mount", target);
}

static void unpin(const char *target) {
  if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) die("umount2", target);
  if (unlink(target) < 0) die("unlink", target);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die("write", path);
  close(fd);
}

static int helper_main(void *arg) {
  (void)arg;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (;;) pause();
  return 0;
}

enum { STACK = 64 * 1024 };

static void create_cycle(const char *target, int same_cpu) {
  char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) die("mmap", NULL);
  int pidfd = -1;
  cpu_set_t was, one;
  if (same_cpu) {
    if (sched_getaffinity(0, sizeof was, &was) < 0) die("sched_getaffinity", NULL);
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof one, &one) < 0) die("sched_setaffinity", NULL);
  }
  pid_t pid = clone(helper_main, stack + STACK, CLONE_VM | CLONE_NEWUSER | CLONE_NEWNET | CLONE_PIDFD | SIGCHLD, NULL, &pidfd);
  if (pid < 0) die("clone", NULL);
  if (same_cpu && sched_setaffinity(0, sizeof was, &was) < 0) die("sched_setaffinity", NULL);
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/user", pid);
  int user = open(p, O_RDONLY | O_CLOEXEC);
  if (user < 0) die("open", p);
  snprintf(p, sizeof p, "/proc/%d/ns/net", pid);
  int net = open(p, O_RDONLY | O_CLOEXEC);
  if (net < 0) die("open", p);
  snprintf(p, sizeof p, "/proc/%d/uid_map", pid);
  write_file(p, "0 100000 65536\n");
  snprintf(p, sizeof p, "/proc/%d/setgroups", pid);
  write_file(p, "allow");
  snprintf(p, sizeof p, "/proc/%d/gid_map", pid);
  write_file(p, "0 100000 65536\n");
  struct stat st;
  if (fstat(net, &st) < 0 || fstat(user, &st) < 0) die("fstat", NULL);
  snprintf(p, sizeof p, "/proc/self/fd/%d", net);
  pin(p, target);
  syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  siginfo_t si;
  while (waitid((idtype_t)P_PIDFD, pidfd, &si, WEXITED) < 0 && errno == EINTR) {
  }
  close(pidfd);
  close(user);
  close(net);
  munmap(stack, STACK);
  unpin(target);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: nsref pin DIR SRC N | nsref create DIR N | nsref create-cpu DIR N\n");
    return 2;
  }
  int is_pin = strcmp(argv[1], "pin") == 0;
  int same_cpu = strcmp(argv[1], "create-cpu") == 0;
  int n = atoi(argv[is_pin ? 4 : 3]);
  char target[4096];
  snprintf(target, sizeof target, "%s/ref-%d", argv[2], (int)getpid());
  long long *t = calloc(n, sizeof *t);
  for (int i = 0; i < n; i++) {
    long long t0 = now_ns();
    if (is_pin) {
      pin(argv[3], target);
      unpin(target);
    } else {
      create_cycle(target, same_cpu);
    }
    t[i] = now_ns() - t0;
  }
  for (int i = 0; i < n; i++) printf("%lld%c", t[i], i + 1 < n ? ' ' : '\n');
  return 0;
}
