// Module init and export table. Each operation is plain C++ (no N-API) in
// its own file; this file only converts arguments and results, and offers a
// Sync variant (throws) and a Promise variant (runs on the libuv pool) of
// everything that makes syscalls. No JS references are held between calls
// (except by run.cc, which cleans up with the environment), so the module is
// safe in worker threads and at environment teardown.
#include <napi.h>

#include <functional>
#include <memory>
#include <optional>

#include "errors.h"
#include "features.h"
#include "idmap_mount.h"
#include "keeper_client.h"
#include "lock.h"
#include "nsinfo.h"
#include "overlay_mount.h"
#include "pin.h"
#include "podns.h"
#include "rootfs.h"
#include "run.h"
#include "userns_netns.h"

namespace nstool {
namespace {

// ---- arguments --------------------------------------------------------------

std::string ArgStr(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) ThrowType(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>();
  if (s.find('\0') != std::string::npos) ThrowType(info.Env(), std::string(name) + " must not contain NUL");
  return s;
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].ToBoolean().Value();
}

std::string PropStr(const Napi::Object& o, const char* key, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) ThrowType(o.Env(), std::string(key) + " is required");
    return "";
  }
  if (!v.IsString()) ThrowType(o.Env(), std::string(key) + " must be a string");
  std::string s = v.As<Napi::String>();
  if (s.find('\0') != std::string::npos) ThrowType(o.Env(), std::string(key) + " must not contain NUL");
  return s;
}

Napi::Object ArgObj(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsObject()) ThrowType(info.Env(), "options must be an object");
  return info[i].As<Napi::Object>();
}

// ---- sync / async plumbing --------------------------------------------------

template <typename R>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Fn = std::function<R()>;
  using Conv = std::function<Napi::Value(Napi::Env, R&)>;
  PromiseWorker(Napi::Env env, Fn fn, Conv conv)
      : Napi::AsyncWorker(env, "nstool"), fn_(std::move(fn)), conv_(std::move(conv)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    // Only the plain values captured in fn_ are touched here.
    try {
      result_ = fn_();
    } catch (const SysError& e) {
      error_ = e;
    } catch (const std::exception& e) {
      error_ = SysError{EIO, e.what(), "", ""};
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (error_) {
      deferred_.Reject(ToJsError(env, *error_).Value());
      return;
    }
    try {
      deferred_.Resolve(conv_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Fn fn_;
  Conv conv_;
  Napi::Promise::Deferred deferred_;
  std::optional<R> result_;
  std::optional<SysError> error_;
};

template <typename R>
Napi::Value Run(Napi::Env env, bool async, std::function<R()> fn,
                std::function<Napi::Value(Napi::Env, R&)> conv) {
  if (async) {
    auto* w = new PromiseWorker<R>(env, std::move(fn), std::move(conv));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }
  try {
    R r = fn();
    return conv(env, r);
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
}

// ---- conversions ------------------------------------------------------------

Napi::Value Undef(Napi::Env env, bool&) { return env.Undefined(); }

Napi::Value UnpinToJs(Napi::Env env, UnpinResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("unmounted", r.unmounted);
  o.Set("removed", r.removed);
  return o;
}

Napi::Value CreateToJs(Napi::Env env, CreateResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("netnsIno", double(r.netns.ino));
  o.Set("netnsDev", double(r.netns.dev));
  o.Set("usernsIno", double(r.userns.ino));
  o.Set("usernsDev", double(r.userns.dev));
  o.Set("usernsId", double(r.userns_id));
  o.Set("guarded", r.guarded);
  return o;
}

Napi::Value InfoToJs(Napi::Env env, NsInfo& i) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("nsfs", i.nsfs);
  o.Set("type", i.type);
  o.Set("ino", double(i.ino));
  o.Set("dev", double(i.dev));
  o.Set("id", double(i.id));
  if (i.has_owner) {
    Napi::Object ow = Napi::Object::New(env);
    ow.Set("ino", double(i.owner_ino));
    ow.Set("dev", double(i.owner_dev));
    ow.Set("uid", double(i.owner_uid));
    ow.Set("id", double(i.owner_id));
    o.Set("owner", ow);
  } else {
    o.Set("owner", env.Null());
  }
  return o;
}

Napi::Value MapsToJs(Napi::Env env, IdMaps& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("uidMap", m.uid_map);
  o.Set("gidMap", m.gid_map);
  o.Set("setgroups", m.setgroups);
  return o;
}

Napi::Value RootFileToJs(Napi::Env env, RootFile& f) {
  if (!f.found) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("mode", double(f.mode));
  o.Set("size", double(f.size));
  o.Set("data", f.read ? Napi::Value(Napi::Buffer<char>::Copy(env, f.data.data(), f.data.size())) : env.Null());
  return o;
}

// ---- exports ----------------------------------------------------------------

Napi::Value EnsurePinDirJs(const Napi::CallbackInfo& info) {
  std::string dir = ArgStr(info, 0, "dir");
  return Run<bool>(info.Env(), false, [=] { EnsurePinDir(dir); return true; }, Undef);
}

Napi::Value PinImpl(const Napi::CallbackInfo& info, bool async) {
  std::string src = ArgStr(info, 0, "source"), target = ArgStr(info, 1, "target");
  return Run<bool>(info.Env(), async, [=] { Pin(src, target); return true; }, Undef);
}

Napi::Value PinOwnerImpl(const Napi::CallbackInfo& info, bool async) {
  std::string ns = ArgStr(info, 0, "nsPath"), target = ArgStr(info, 1, "target");
  return Run<bool>(info.Env(), async, [=] { PinOwner(ns, target); return true; }, Undef);
}

Napi::Value UnpinImpl(const Napi::CallbackInfo& info, bool async) {
  std::string target = ArgStr(info, 0, "target");
  return Run<UnpinResult>(info.Env(), async, [=] { return Unpin(target); }, UnpinToJs);
}

using UnpinAllResult = std::optional<std::vector<UnpinResult>>;

Napi::Value UnpinAllToJs(Napi::Env env, UnpinAllResult& r) {
  if (!r) return env.Null();
  Napi::Array a = Napi::Array::New(env, r->size());
  for (size_t i = 0; i < r->size(); i++) a.Set(static_cast<uint32_t>(i), UnpinToJs(env, (*r)[i]));
  return a;
}

// unpinAll(targets, guard, keepGoing): null when GUARD exists (nothing done).
Napi::Value UnpinAllImpl(const Napi::CallbackInfo& info, bool async) {
  if (info.Length() < 1 || !info[0].IsArray()) ThrowType(info.Env(), "targets must be an array of strings");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::string> targets;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) ThrowType(info.Env(), "targets must be an array of strings");
    std::string t = v.As<Napi::String>();
    if (t.find('\0') != std::string::npos) ThrowType(info.Env(), "targets must not contain NUL");
    targets.push_back(std::move(t));
  }
  std::string guard = info.Length() > 1 && !info[1].IsUndefined() ? ArgStr(info, 1, "guard") : "";
  bool keep_going = ArgBool(info, 2);
  return Run<UnpinAllResult>(info.Env(), async, [=] { return UnpinAll(targets, guard, keep_going); }, UnpinAllToJs);
}

Napi::Value UnmountJs(const Napi::CallbackInfo& info) {
  std::string target = ArgStr(info, 0, "target");
  return Run<bool>(info.Env(), false, [=] { return Unmount(target); },
                   [](Napi::Env env, bool& b) -> Napi::Value { return Napi::Boolean::New(env, b); });
}

Napi::Value CreateImpl(const Napi::CallbackInfo& info, bool async) {
  Napi::Object o = ArgObj(info, 0);
  CreateParams p;
  p.uid_map = PropStr(o, "uidMap", true);
  p.gid_map = PropStr(o, "gidMap", true);
  p.setgroups = PropStr(o, "setgroups", false);
  p.netns_pin = PropStr(o, "netnsPin", true);
  p.userns_pin = PropStr(o, "usernsPin", false);
  p.guard = PropStr(o, "guard", false);
  return Run<CreateResult>(info.Env(), async, [p] { return CreateUsernsNetns(p); }, CreateToJs);
}

Napi::Value InspectImpl(const Napi::CallbackInfo& info, bool async) {
  std::string path = ArgStr(info, 0, "path");
  bool nofollow = ArgBool(info, 1);
  return Run<NsInfo>(info.Env(), async, [=] { return InspectNs(path, nofollow); }, InfoToJs);
}

Napi::Value MapsImpl(const Napi::CallbackInfo& info, bool async) {
  std::string path = ArgStr(info, 0, "path");
  bool owner = ArgBool(info, 1);
  return Run<IdMaps>(info.Env(), async, [=] { return ReadIdMaps(path, owner); }, MapsToJs);
}

Napi::Value IdmapImpl(const Napi::CallbackInfo& info, bool async) {
  std::string src = ArgStr(info, 0, "source"), target = ArgStr(info, 1, "target"),
              userns = ArgStr(info, 2, "userns");
  bool recursive = ArgBool(info, 3), readonly = ArgBool(info, 4), nosuid = ArgBool(info, 5),
       nodev = ArgBool(info, 6);
  return Run<bool>(info.Env(), async, [=] {
    IdmapMount(src, target, userns, recursive, readonly, nosuid, nodev);
    return true;
  }, Undef);
}

Napi::Value OverlayImpl(const Napi::CallbackInfo& info, bool async) {
  std::string lower = ArgStr(info, 0, "lower"), upper = ArgStr(info, 1, "upper"),
              work = ArgStr(info, 2, "work"), target = ArgStr(info, 3, "target");
  bool nosuid = ArgBool(info, 4), nodev = ArgBool(info, 5);
  return Run<bool>(info.Env(), async, [=] {
    OverlayMount(lower, upper, work, target, nosuid, nodev);
    return true;
  }, Undef);
}

Napi::Value RenameImpl(const Napi::CallbackInfo& info, bool async) {
  std::string from = ArgStr(info, 0, "from"), to = ArgStr(info, 1, "to");
  return Run<bool>(info.Env(), async, [=] { RenameNoReplace(from, to); return true; }, Undef);
}

Napi::Value LockImpl(const Napi::CallbackInfo& info, bool async) {
  std::string path = ArgStr(info, 0, "path");
  bool wait = ArgBool(info, 1);
  return Run<int>(info.Env(), async, [=] { return LockFile(path, wait); },
                  [](Napi::Env env, int& fd) -> Napi::Value { return Napi::Number::New(env, fd); });
}

Napi::Value InotifyInitJs(const Napi::CallbackInfo& info) {
  return Run<int>(info.Env(), false, [] { return InotifyInit(); },
                  [](Napi::Env env, int& fd) -> Napi::Value { return Napi::Number::New(env, fd); });
}

Napi::Value InotifyWatchJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowType(info.Env(), "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string dir = ArgStr(info, 1, "dir");
  return Run<int>(info.Env(), false, [=] { return InotifyWatchDir(fd, dir); },
                  [](Napi::Env env, int& wd) -> Napi::Value { return Napi::Number::New(env, wd); });
}

Napi::Value InotifyReadJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowType(info.Env(), "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Run<std::string>(info.Env(), false, [=] { return InotifyRead(fd); },
                          [](Napi::Env env, std::string& b) -> Napi::Value {
                            return Napi::Buffer<char>::Copy(env, b.data(), b.size());
                          });
}

Napi::Value CloseFdJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowType(info.Env(), "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Run<bool>(info.Env(), false, [=] { CloseFd(fd); return true; }, Undef);
}

Napi::Value ReadInRootImpl(const Napi::CallbackInfo& info, bool async) {
  std::string root = ArgStr(info, 0, "root"), path = ArgStr(info, 1, "path");
  if (info.Length() <= 2 || !info[2].IsNumber()) ThrowType(info.Env(), "maxBytes must be a number");
  double max = info[2].As<Napi::Number>().DoubleValue();
  if (!(max >= 0 && max <= 1 << 30)) ThrowType(info.Env(), "maxBytes must be from 0 to 2^30");
  ResolveHow how = ResolveHow::kAuto;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    std::string h = ArgStr(info, 3, "how");
    if (h == "openat2") how = ResolveHow::kOpenat2;
    else if (h == "walk") how = ResolveHow::kWalk;
    else if (h != "auto") ThrowType(info.Env(), "how must be auto, openat2 or walk");
  }
  size_t max_bytes = static_cast<size_t>(max);
  return Run<RootFile>(info.Env(), async, [=] { return ReadInRoot(root, path, max_bytes, how); }, RootFileToJs);
}

// ---- rootless: a held helper and the keeper's socket ------------------------
//
// A held helper is a JS External owning a shared_ptr: closing it (or GC, or
// environment teardown, through the finalizer) drops that reference, and a
// worker still sending its fds holds its own, so the helper is killed and
// reaped, and its fds closed, exactly once and never under a running call.

struct HeldBox {
  std::shared_ptr<HeldNs> ns;
};

std::shared_ptr<HeldNs> ArgHeld(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsExternal()) ThrowType(info.Env(), "handle must be a held helper");
  HeldBox* box = info[i].As<Napi::External<HeldBox>>().Data();
  if (!box || !box->ns) ThrowType(info.Env(), "the held helper is already closed");
  return box->ns;
}

int ArgTimeout(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), "timeoutMs must be a number");
  double t = info[i].As<Napi::Number>().DoubleValue();
  if (!(t >= 1 && t <= 600000)) ThrowType(info.Env(), "timeoutMs must be from 1 to 600000");
  return static_cast<int>(t);
}

Napi::Value HeldToJs(Napi::Env env, std::shared_ptr<HeldNs>& ns) {
  auto* box = new HeldBox{ns};
  Napi::Object o = Napi::Object::New(env);
  o.Set("handle", Napi::External<HeldBox>::New(env, box, [](Napi::Env, HeldBox* b) { delete b; }));
  o.Set("pid", double(ns->pid()));
  CreateResult ids = ns->ids();
  o.Set("netnsIno", double(ids.netns.ino));
  o.Set("netnsDev", double(ids.netns.dev));
  o.Set("usernsIno", double(ids.userns.ino));
  o.Set("usernsDev", double(ids.userns.dev));
  return o;
}

Napi::Value HeldStartImpl(const Napi::CallbackInfo& info, bool async) {
  return Run<std::shared_ptr<HeldNs>>(info.Env(), async, [] { return std::shared_ptr<HeldNs>(HeldNs::Start()); }, HeldToJs);
}

Napi::Value HeldWriteJs(const Napi::CallbackInfo& info) {
  auto ns = ArgHeld(info, 0);
  std::string leaf = ArgStr(info, 1, "file"), text = ArgStr(info, 2, "text");
  if (leaf != "uid_map" && leaf != "gid_map" && leaf != "setgroups") ThrowType(info.Env(), "file must be uid_map, gid_map or setgroups");
  return Run<bool>(info.Env(), false, [&] { ns->Write(leaf, text); return true; }, Undef);
}

Napi::Value HeldReadMapsJs(const Napi::CallbackInfo& info) {
  auto ns = ArgHeld(info, 0);
  return Run<IdMaps>(info.Env(), false, [&] {
    return IdMaps{ns->Read("uid_map"), ns->Read("gid_map"), ns->Read("setgroups")};
  }, MapsToJs);
}

Napi::Value HeldCloseJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) ThrowType(info.Env(), "handle must be a held helper");
  HeldBox* box = info[0].As<Napi::External<HeldBox>>().Data();
  if (box) box->ns.reset();
  return info.Env().Undefined();
}

Napi::Value StrToJs(Napi::Env env, std::string& s) { return Napi::String::New(env, s); }

Napi::Value HeldSendImpl(const Napi::CallbackInfo& info, bool async) {
  auto ns = ArgHeld(info, 0);
  std::string sock = ArgStr(info, 1, "socketPath"), req = ArgStr(info, 2, "request");
  int timeout = ArgTimeout(info, 3);
  return Run<std::string>(info.Env(), async, [=] {
    return KeeperCall(sock, req, {ns->netns_fd(), ns->userns_fd()}, timeout);
  }, StrToJs);
}

Napi::Value KeeperCallImpl(const Napi::CallbackInfo& info, bool async) {
  std::string sock = ArgStr(info, 0, "socketPath"), req = ArgStr(info, 1, "request");
  int timeout = ArgTimeout(info, 2);
  return Run<std::string>(info.Env(), async, [=] { return KeeperCall(sock, req, {}, timeout); }, StrToJs);
}

template <Napi::Value (*F)(const Napi::CallbackInfo&, bool), bool Async>
Napi::Value Bind(const Napi::CallbackInfo& info) {
  return F(info, Async);
}

// ---- features probes ----------------------------------------------------------

Napi::Value ProbeSyscallsJs(const Napi::CallbackInfo& info) {
  using R = std::vector<std::pair<std::string, int>>;
  return Run<R>(info.Env(), false, [] { return ProbeSyscalls(); }, [](Napi::Env env, R& r) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& [name, err] : r) o.Set(name, err);
    return o;
  });
}

Napi::Value ProbeUnprivJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) ThrowType(info.Env(), "uid and gid must be numbers");
  unsigned uid = info[0].As<Napi::Number>().Uint32Value(), gid = info[1].As<Napi::Number>().Uint32Value();
  bool drop = ArgBool(info, 2);
  return Run<UnprivResult>(info.Env(), false, [=] { return ProbeUnprivilegedUserns(uid, gid, drop); },
                           [](Napi::Env env, UnprivResult& r) -> Napi::Value {
                             Napi::Object o = Napi::Object::New(env);
                             o.Set("step", r.step);
                             o.Set("errno", r.err);
                             return o;
                           });
}

Napi::Value ProbeRroJs(const Napi::CallbackInfo& info) {
  std::string path = ArgStr(info, 0, "path");
  return Run<bool>(info.Env(), false, [=] { ProbeRecursiveReadonly(path); return true; }, Undef);
}

Napi::Value MountTmpfsJs(const Napi::CallbackInfo& info) {
  std::string target = ArgStr(info, 0, "target");
  return Run<bool>(info.Env(), false, [=] { MountTmpfs(target); return true; }, Undef);
}

void InitFeatures(Napi::Env env, Napi::Object exports) {
  exports.Set("probeSyscallsSync", Napi::Function::New(env, ProbeSyscallsJs, "probeSyscallsSync"));
  exports.Set("probeUnprivilegedUsernsSync", Napi::Function::New(env, ProbeUnprivJs, "probeUnprivilegedUsernsSync"));
  exports.Set("probeRecursiveReadonlySync", Napi::Function::New(env, ProbeRroJs, "probeRecursiveReadonlySync"));
  exports.Set("mountTmpfsSync", Napi::Function::New(env, MountTmpfsJs, "mountTmpfsSync"));
}

// ---- pod ipc and uts namespaces ---------------------------------------------

Napi::Value PodNsToJs(Napi::Env env, PodNsResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ipcIno", double(r.ipc_ino));
  o.Set("ipcDev", double(r.ipc_dev));
  o.Set("utsIno", double(r.uts_ino));
  o.Set("utsDev", double(r.uts_dev));
  o.Set("usernsIno", double(r.userns_ino));
  o.Set("usernsDev", double(r.userns_dev));
  if (!r.ipc_reply.empty()) o.Set("ipcReply", r.ipc_reply);
  if (!r.uts_reply.empty()) o.Set("utsReply", r.uts_reply);
  return o;
}

Napi::Value PodNsImpl(const Napi::CallbackInfo& info, bool async) {
  Napi::Object o = ArgObj(info, 0);
  PodNsParams p;
  p.userns = PropStr(o, "userns", true);
  p.ipc_pin = PropStr(o, "ipcPin", false);
  p.uts_pin = PropStr(o, "utsPin", false);
  p.hostname = PropStr(o, "hostname", false);
  p.keeper_sock = PropStr(o, "keeperSock", false);
  p.ipc_request = PropStr(o, "ipcRequest", false);
  p.uts_request = PropStr(o, "utsRequest", false);
  return Run<PodNsResult>(info.Env(), async, [p] { return CreatePodNs(p); }, PodNsToJs);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ensurePinDirSync", Napi::Function::New(env, EnsurePinDirJs, "ensurePinDirSync"));
  exports.Set("pinSync", Napi::Function::New(env, Bind<PinImpl, false>, "pinSync"));
  exports.Set("pin", Napi::Function::New(env, Bind<PinImpl, true>, "pin"));
  exports.Set("pinOwnerSync", Napi::Function::New(env, Bind<PinOwnerImpl, false>, "pinOwnerSync"));
  exports.Set("pinOwner", Napi::Function::New(env, Bind<PinOwnerImpl, true>, "pinOwner"));
  exports.Set("unpinSync", Napi::Function::New(env, Bind<UnpinImpl, false>, "unpinSync"));
  exports.Set("unpin", Napi::Function::New(env, Bind<UnpinImpl, true>, "unpin"));
  exports.Set("unpinAllSync", Napi::Function::New(env, Bind<UnpinAllImpl, false>, "unpinAllSync"));
  exports.Set("unpinAll", Napi::Function::New(env, Bind<UnpinAllImpl, true>, "unpinAll"));
  exports.Set("unmountSync", Napi::Function::New(env, UnmountJs, "unmountSync"));
  exports.Set("createUsernsNetnsSync", Napi::Function::New(env, Bind<CreateImpl, false>, "createUsernsNetnsSync"));
  exports.Set("createUsernsNetns", Napi::Function::New(env, Bind<CreateImpl, true>, "createUsernsNetns"));
  exports.Set("inspectNsSync", Napi::Function::New(env, Bind<InspectImpl, false>, "inspectNsSync"));
  exports.Set("inspectNs", Napi::Function::New(env, Bind<InspectImpl, true>, "inspectNs"));
  exports.Set("readIdMapsSync", Napi::Function::New(env, Bind<MapsImpl, false>, "readIdMapsSync"));
  exports.Set("readIdMaps", Napi::Function::New(env, Bind<MapsImpl, true>, "readIdMaps"));
  exports.Set("idmapMountSync", Napi::Function::New(env, Bind<IdmapImpl, false>, "idmapMountSync"));
  exports.Set("idmapMount", Napi::Function::New(env, Bind<IdmapImpl, true>, "idmapMount"));
  exports.Set("overlayMountSync", Napi::Function::New(env, Bind<OverlayImpl, false>, "overlayMountSync"));
  exports.Set("overlayMount", Napi::Function::New(env, Bind<OverlayImpl, true>, "overlayMount"));
  exports.Set("renameNoReplaceSync", Napi::Function::New(env, Bind<RenameImpl, false>, "renameNoReplaceSync"));
  exports.Set("renameNoReplace", Napi::Function::New(env, Bind<RenameImpl, true>, "renameNoReplace"));
  exports.Set("lockFileSync", Napi::Function::New(env, Bind<LockImpl, false>, "lockFileSync"));
  exports.Set("lockFile", Napi::Function::New(env, Bind<LockImpl, true>, "lockFile"));
  exports.Set("readInRootSync", Napi::Function::New(env, Bind<ReadInRootImpl, false>, "readInRootSync"));
  exports.Set("readInRoot", Napi::Function::New(env, Bind<ReadInRootImpl, true>, "readInRoot"));
  exports.Set("closeFdSync", Napi::Function::New(env, CloseFdJs, "closeFdSync"));
  InitFeatures(env, exports);
  InitRun(env, exports);
  exports.Set("createPodNsSync", Napi::Function::New(env, Bind<PodNsImpl, false>, "createPodNsSync"));
  exports.Set("createPodNs", Napi::Function::New(env, Bind<PodNsImpl, true>, "createPodNs"));
  exports.Set("heldUsernsNetns", Napi::Function::New(env, Bind<HeldStartImpl, true>, "heldUsernsNetns"));
  exports.Set("heldUsernsNetnsSync", Napi::Function::New(env, Bind<HeldStartImpl, false>, "heldUsernsNetnsSync"));
  exports.Set("heldWriteSync", Napi::Function::New(env, HeldWriteJs, "heldWriteSync"));
  exports.Set("heldReadMapsSync", Napi::Function::New(env, HeldReadMapsJs, "heldReadMapsSync"));
  exports.Set("heldSend", Napi::Function::New(env, Bind<HeldSendImpl, true>, "heldSend"));
  exports.Set("heldCloseSync", Napi::Function::New(env, HeldCloseJs, "heldCloseSync"));
  exports.Set("keeperCall", Napi::Function::New(env, Bind<KeeperCallImpl, true>, "keeperCall"));
  exports.Set("keeperCallSync", Napi::Function::New(env, Bind<KeeperCallImpl, false>, "keeperCallSync"));
  exports.Set("inotifyInitSync", Napi::Function::New(env, InotifyInitJs, "inotifyInitSync"));
  exports.Set("inotifyWatchDirSync", Napi::Function::New(env, InotifyWatchJs, "inotifyWatchDirSync"));
  exports.Set("inotifyReadSync", Napi::Function::New(env, InotifyReadJs, "inotifyReadSync"));
  return exports;
}

}  // namespace
}  // namespace nstool

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return nstool::Init(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitModule)
