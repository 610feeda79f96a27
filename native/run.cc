// Starting a program (the spawn helper, which then execs the real one) with
// posix_spawn, and waiting for it on Node's own event loop.
//
// Node's child_process forks the whole Node process: copying its page tables
// costs 1-2 ms per program, which is most of what a CNI plugin run costs
// besides the plugin. glibc's posix_spawn is a vfork (CLONE_VM|CLONE_VFORK):
// the calling thread waits only until the helper has exec'd. The exit is
// seen through a pidfd polled on the loop (readable once the process ended),
// stdout and stderr through non-blocking pipes polled there too; no pool
// thread is held while a program runs.
//
// This is the one place in the addon that keeps JS state between calls (the
// exit callback of each running program); an environment cleanup hook kills
// and forgets what is still running when a worker or the process goes away.
#include "run.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "fd.h"

extern char** environ;

namespace nstool {
namespace {

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSignal(int pidfd, int sig) { return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0)); }

// Slot codes from JS: an fd of ours (>= 0), or one of these.
constexpr int kIgnore = -1;
constexpr int kInherit = -2;
constexpr int kPipe = -3;
// Sources are moved at or above this before the file actions run, so that
// no dup2 onto 0-3 can overwrite a source a later action still reads.
constexpr int kHighFd = 10;
constexpr size_t kReportMax = 256;

// One stream we read: stdout, stderr (while the program runs) or the report
// (after it ended: the helper writes one short line before it exits).
struct Stream {
  Fd fd;
  uv_poll_t poll{};
  bool polling = false;
  std::string data;
  size_t limit = 0;
  bool truncated = false;
};

struct Running;

// The programs running for one environment (one loop thread), by id: a
// kill() that comes late finds nothing rather than a reused address.
struct Registry {
  std::map<uint64_t, Running*> live;
  uint64_t next = 1;
  int handles = 0;  // uv handles not yet closed, over all runs
  napi_async_cleanup_hook_handle hook = nullptr;
  bool closing = false;  // the environment is going away
};

// Teardown waits for this (an async cleanup hook): the addon may be unloaded
// right after, and a close callback must not run into unmapped code.
void DoneIfClosed(Registry* reg) {
  if (reg->closing && reg->handles == 0) {
    napi_remove_async_cleanup_hook(reg->hook);
    delete reg;
  }
}

struct Running {
  napi_env env = nullptr;
  Registry* reg = nullptr;
  uint64_t id = 0;
  napi_async_context ctx = nullptr;
  pid_t pid = 0;
  Fd pidfd;
  uv_poll_t exit_poll{};
  Stream out, err, report;
  Napi::FunctionReference on_exit;
  int open_handles = 0;
  // Finish and Cleanup take the context; it is still here only when a start failed.
  ~Running() {
    if (ctx) napi_async_destroy(env, ctx);
  }
};

void FreeWhenClosed(uv_handle_t* h) {
  auto* r = static_cast<Running*>(h->data);
  Registry* reg = r->reg;
  reg->handles--;
  if (--r->open_handles == 0) delete r;
  DoneIfClosed(reg);
}

void CloseHandle(Running* r, uv_poll_t* p) {
  p->data = r;
  uv_close(reinterpret_cast<uv_handle_t*>(p), FreeWhenClosed);
}

// Reads up to BUDGET bytes of what the pipe holds (beyond the limit they are
// dropped, so the writer never blocks on us); false at EOF or error (nothing
// more comes). The budget keeps a fast writer from holding the loop.
bool ReadAvailable(Stream& s, size_t budget) {
  char buf[65536];
  while (budget > 0) {
    ssize_t n = read(s.fd.get(), buf, budget < sizeof buf ? budget : sizeof buf);
    if (n > 0) {
      size_t room = s.limit > s.data.size() ? s.limit - s.data.size() : 0;
      size_t keep = static_cast<size_t>(n) < room ? static_cast<size_t>(n) : room;
      if (keep < static_cast<size_t>(n)) s.truncated = true;
      s.data.append(buf, keep);
      budget -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
  return true;
}

void StopStream(Running* r, Stream& s) {
  if (s.polling) {
    uv_poll_stop(&s.poll);
    CloseHandle(r, &s.poll);
    s.polling = false;
  }
  s.fd.reset();
}

void OnStream(uv_poll_t* p, int status, int) {
  auto* s = static_cast<Stream*>(p->data);
  // Level-triggered: what the budget left is read on the next turn of the loop.
  if (status < 0 || !ReadAvailable(*s, 1 << 20)) uv_poll_stop(p);  // EOF: closed with the rest at exit
}

Napi::Value Bytes(Napi::Env env, const std::string& s) { return Napi::Buffer<char>::Copy(env, s.data(), s.size()); }

void Finish(Running* r, const siginfo_t& si) {
  // What the program left in the pipes is taken now, and no more: a
  // grandchild that kept them open, writing as fast as we read, must not
  // keep us reading.
  for (Stream* s : {&r->out, &r->err, &r->report}) {
    int queued = 0;
    if (s->fd.valid() && ioctl(s->fd.get(), FIONREAD, &queued) == 0 && queued > 0) ReadAvailable(*s, static_cast<size_t>(queued));
    StopStream(r, *s);
  }
  uv_poll_stop(&r->exit_poll);
  CloseHandle(r, &r->exit_poll);
  r->pidfd.reset();
  r->reg->live.erase(r->id);

  napi_env raw = r->env;
  napi_async_context ctx = std::exchange(r->ctx, nullptr);
  Napi::FunctionReference cb = std::move(r->on_exit);
  // A worker being terminated refuses JS: node-addon-api throws then, and a
  // C++ exception must not leave a libuv callback.
  try {
    Napi::Env env(raw);
    Napi::HandleScope scope(env);
    Napi::Object o = Napi::Object::New(env);
    bool exited = si.si_code == CLD_EXITED;
    o.Set("exitCode", exited ? Napi::Value(Napi::Number::New(env, si.si_status)) : env.Null());
    o.Set("signal", exited ? 0 : si.si_status);
    o.Set("stdout", Bytes(env, r->out.data));
    o.Set("stderr", Bytes(env, r->err.data));
    o.Set("report", Napi::String::New(env, r->report.data));
    o.Set("truncated", r->out.truncated || r->err.truncated);
    napi_value argv[] = {o};
    napi_value result;
    if (napi_make_callback(raw, ctx, env.Global(), cb.Value(), 1, argv, &result) == napi_pending_exception) {
      napi_value e;
      if (napi_get_and_clear_last_exception(raw, &e) == napi_ok) napi_fatal_exception(raw, e);
    }
  } catch (const Napi::Error&) {
  }
  napi_async_destroy(raw, ctx);
}

void OnExit(uv_poll_t* p, int status, int) {
  auto* r = static_cast<Running*>(p->data);
  siginfo_t si{};
  // Readable means it ended; WNOHANG keeps a spurious wake from blocking.
  int rc;
  do rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(r->pidfd.get()), &si, WEXITED | WNOHANG);
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno == EAGAIN) return;  // still running (the pidfd is non-blocking)
  if (rc < 0) {
    // Not our child any more (cannot happen while we hold it): report it as killed.
    si.si_code = CLD_KILLED;
    si.si_status = SIGKILL;
  } else if (si.si_pid == 0) {
    return;
  }
  Finish(r, si);
}

// SIGKILL and wait: for a child nobody else will wait for.
void KillAndReap(int pidfd) {
  PidfdSignal(pidfd, SIGKILL);
  // uv_poll made the pidfd non-blocking: waitid would say EAGAIN.
  int fl = fcntl(pidfd, F_GETFL);
  if (fl >= 0) fcntl(pidfd, F_SETFL, fl & ~O_NONBLOCK);
  siginfo_t si{};
  while (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &si, WEXITED) < 0 && errno == EINTR) {
  }
}

void Cleanup(napi_async_cleanup_hook_handle, void* arg) {
  // The environment goes away with programs running: they are killed and
  // reaped (not left as zombies of a thread that is gone), their callbacks
  // dropped, their handles closed.
  auto* reg = static_cast<Registry*>(arg);
  reg->closing = true;
  for (auto [id, r] : std::map<uint64_t, Running*>(reg->live)) {
    KillAndReap(r->pidfd.get());
    for (Stream* s : {&r->out, &r->err, &r->report}) StopStream(r, *s);
    uv_poll_stop(&r->exit_poll);
    CloseHandle(r, &r->exit_poll);
    r->pidfd.reset();
    r->on_exit.Reset();
    if (r->ctx) napi_async_destroy(r->env, r->ctx);
    r->ctx = nullptr;
    reg->live.erase(id);
  }
  DoneIfClosed(reg);
}

std::vector<std::string> StrArray(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) ThrowType(v.Env(), std::string(what) + " must be an array of strings");
  auto a = v.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) ThrowType(v.Env(), std::string(what) + " must be an array of strings");
    std::string s = e.As<Napi::String>();
    if (s.find('\0') != std::string::npos) ThrowType(v.Env(), std::string(what) + " must not contain NUL");
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<char*> CArgv(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

Fd Pipe(Fd* child_end) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) Throw("pipe2");
  Fd rd(p[0]);
  child_end->reset(p[1]);
  int fl = fcntl(rd.get(), F_GETFL);
  if (fl < 0 || fcntl(rd.get(), F_SETFL, fl | O_NONBLOCK) < 0) Throw("fcntl");
  return rd;
}

// Input as a memory file: the program reads it at its own pace, whatever its
// size, and nothing has to be written to it while it runs.
Fd InputFile(const char* data, size_t len) {
  Fd f(memfd_create("nstool-input", MFD_CLOEXEC));
  if (!f.valid()) Throw("memfd_create");
  for (size_t off = 0; off < len;) {
    ssize_t n = write(f.get(), data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Throw("write");
    off += static_cast<size_t>(n);
  }
  if (lseek(f.get(), 0, SEEK_SET) < 0) Throw("lseek");
  return f;
}

Fd High(int fd) {
  Fd f(fcntl(fd, F_DUPFD_CLOEXEC, kHighFd));
  if (!f.valid()) Throw("fcntl", "", errno);
  return f;
}

struct Actions {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  Actions() {
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
  }
  ~Actions() {
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  void Dup(int from, int to) {
    int e = posix_spawn_file_actions_adddup2(&fa, from, to);
    if (e) Throw("posix_spawn_file_actions_adddup2", "", e);
  }
};

// spawnStart(file, argv, env, [s0, s1, s2], input | null, maxOutput, onExit)
//   -> { pid, kill() }
// onExit({ exitCode, signal, stdout, stderr, report, truncated }) runs once.
Napi::Value SpawnStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* reg = static_cast<Registry*>(info.Data());
  if (info.Length() < 7 || !info[0].IsString() || !info[3].IsArray() || !info[5].IsNumber() || !info[6].IsFunction())
    ThrowType(env, "spawnStart(file, argv, env, slots, input, maxOutput, onExit)");
  std::string file = info[0].As<Napi::String>();
  if (file.find('\0') != std::string::npos) ThrowType(env, "file must not contain NUL");
  std::vector<std::string> argv = StrArray(info[1], "argv");
  std::vector<std::string> envs = StrArray(info[2], "env");
  if (argv.empty()) ThrowType(env, "argv must not be empty");
  auto slots_js = info[3].As<Napi::Array>();
  if (slots_js.Length() != 3) ThrowType(env, "slots must be three");
  int slots[3];
  for (uint32_t i = 0; i < 3; i++) {
    Napi::Value v = slots_js.Get(i);
    // Checked as a double: Int32Value would wrap 2^32 + 1 onto fd 1.
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -4;
    if (!(d >= kPipe && d <= INT_MAX) || d != static_cast<int>(d)) ThrowType(env, "each slot must be an fd or -1, -2, -3");
    slots[i] = static_cast<int>(d);
  }
  bool has_input = info[4].IsBuffer();
  if (has_input && slots[0] != kPipe) ThrowType(env, "input needs stdin to be a pipe");
  double max_output = info[5].As<Napi::Number>().DoubleValue();
  if (!(max_output >= 0)) ThrowType(env, "maxOutput must not be negative");

  auto* r = new Running();
  std::unique_ptr<Running> owner(r);
  r->env = env;
  r->out.limit = r->err.limit = static_cast<size_t>(max_output);
  r->report.limit = kReportMax;

  // Everything that calls into JS comes before the spawn: in a worker being
  // terminated such calls fail (and throw), and a throw after the spawn
  // would leave a child that nobody kills or waits for.
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) ThrowType(env, "no event loop");
  r->on_exit = Napi::Persistent(info[6].As<Napi::Function>());
  if (napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "nstool:spawn"), &r->ctx) != napi_ok) {
    r->ctx = nullptr;
    ThrowType(env, "napi_async_init failed");
  }
  uint64_t id = reg->next++;
  Napi::Object o = Napi::Object::New(env);
  // kill(): SIGKILL through the pidfd, a no-op once it was reaped.
  o.Set("kill", Napi::Function::New(env, [reg, id](const Napi::CallbackInfo&) {
          auto it = reg->live.find(id);
          if (it != reg->live.end()) PidfdSignal(it->second->pidfd.get(), SIGKILL);
        }, "kill"));

  pid_t pid = 0;
  try {
    // The caller's fds are checked before we open anything: a closed number
    // would be taken by our first new fd (the input file, a pipe end, a copy)
    // and handed over in its place.
    for (int s : slots)
      if (s >= 0 && fcntl(s, F_GETFD) < 0) Throw("fcntl", "", errno);
    Actions a;
    std::vector<Fd> keep;  // the child's ends and high copies, closed here after the spawn
    for (int i = 0; i < 3; i++) {
      int s = slots[i];
      if (s == kIgnore) {
        int e = posix_spawn_file_actions_addopen(&a.fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
        if (e) Throw("posix_spawn_file_actions_addopen", "/dev/null", e);
      } else if (s == kPipe && i == 0) {
        if (has_input) {
          auto b = info[4].As<Napi::Buffer<char>>();
          keep.push_back(InputFile(b.Data(), b.Length()));
        } else {
          keep.push_back(InputFile(nullptr, 0));  // stdin at EOF
        }
        keep.push_back(High(keep.back().get()));
        a.Dup(keep.back().get(), 0);
      } else if (s == kPipe) {
        Fd child;
        (i == 1 ? r->out : r->err).fd = Pipe(&child);
        keep.push_back(High(child.get()));
        a.Dup(keep.back().get(), i);
      } else {
        keep.push_back(High(s == kInherit ? i : s));
        a.Dup(keep.back().get(), i);
      }
    }
    Fd rep_child;
    r->report.fd = Pipe(&rep_child);
    keep.push_back(High(rep_child.get()));
    a.Dup(keep.back().get(), 3);

    // Node ignores SIGPIPE and SIGXFSZ and may block signals on this thread:
    // the helper starts with default dispositions and an empty mask (and
    // resets what glibc's posix_spawn cannot: its internal signals).
    sigset_t none, def;
    sigemptyset(&none);
    sigfillset(&def);
    posix_spawnattr_setsigmask(&a.attr, &none);
    posix_spawnattr_setsigdefault(&a.attr, &def);
    posix_spawnattr_setflags(&a.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    auto cargv = CArgv(argv);
    auto cenv = CArgv(envs);
    int e = posix_spawn(&pid, file.c_str(), &a.fa, &a.attr, cargv.data(), cenv.data());
    if (e) Throw("posix_spawn", file, e);
    // pidfd_open before anyone could reap it: the pid is still ours.
    r->pidfd.reset(PidfdOpen(pid));
    if (!r->pidfd.valid()) {
      int err = errno;
      kill(pid, SIGKILL);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      Throw("pidfd_open", "", err);
    }
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
  r->pid = pid;
  r->reg = reg;
  r->id = id;

  // The polls before the run is registered: one that cannot be made (the
  // epoll watch limit) ends the child here, and the handles made so far
  // are closed (the last close frees the run).
  std::vector<uv_poll_t*> made;
  int err = uv_poll_init(loop, &r->exit_poll, r->pidfd.get());
  if (err == 0) made.push_back(&r->exit_poll);
  for (Stream* s : {&r->out, &r->err}) {
    if (err || !s->fd.valid()) continue;
    err = uv_poll_init(loop, &s->poll, s->fd.get());
    if (err == 0) made.push_back(&s->poll);
  }
  if (err) {
    KillAndReap(r->pidfd.get());
    napi_async_destroy(env, std::exchange(r->ctx, nullptr));
    r->open_handles += static_cast<int>(made.size());
    reg->handles += static_cast<int>(made.size());
    if (!made.empty()) owner.release();
    for (uv_poll_t* p : made) CloseHandle(r, p);
    throw ToJsError(env, SysError{-err, "uv_poll_init", "", ""});
  }
  owner.release();
  reg->live[id] = r;
  r->exit_poll.data = r;
  r->open_handles++;
  reg->handles++;
  uv_poll_start(&r->exit_poll, UV_READABLE, OnExit);
  for (Stream* s : {&r->out, &r->err}) {
    if (!s->fd.valid()) continue;
    s->poll.data = s;
    r->open_handles++;
    reg->handles++;
    s->polling = true;
    uv_poll_start(&s->poll, UV_READABLE, OnStream);
  }

  // Not checked: it fails only while the environment goes away, and then
  // its cleanup hook kills and reaps the child registered above.
  napi_set_named_property(env, o, "pid", Napi::Number::New(env, pid));
  return o;
}

}  // namespace

void InitRun(Napi::Env env, Napi::Object exports) {
  auto* reg = new Registry();
  if (napi_add_async_cleanup_hook(env, Cleanup, reg, &reg->hook) != napi_ok) ThrowType(env, "napi_add_async_cleanup_hook failed");
  exports.Set("spawnStart", Napi::Function::New(env, SpawnStart, "spawnStart", reg));
}

}  // namespace nstool
