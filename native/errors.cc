#include "errors.h"

#include <cstring>

namespace nstool {

Napi::Error ToJsError(Napi::Env env, const SysError& e) {
  const char* name = strerrorname_np(e.err);
  const char* desc = strerrordesc_np(e.err);
  std::string code = name ? name : ("E" + std::to_string(e.err));
  std::string msg = code + ": " + (desc ? desc : "unknown error") + ", " + e.syscall;
  if (!e.path.empty()) msg += " '" + e.path + "'";
  if (!e.dest.empty()) msg += " -> '" + e.dest + "'";
  Napi::Error err = Napi::Error::New(env, msg);
  Napi::Object o = err.Value();
  o.Set("code", code);
  o.Set("errno", -e.err);  // negative, as Node's fs errors report it
  o.Set("syscall", e.syscall);
  if (!e.path.empty()) o.Set("path", e.path);
  if (!e.dest.empty()) o.Set("dest", e.dest);
  return err;
}

void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

}  // namespace nstool
