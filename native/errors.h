// A failed syscall, carried as a C++ exception inside the core and turned
// into a JS Error shaped like Node's own (code, errno, syscall, path) at the
// N-API boundary. Plain data so async workers can hold it off the JS thread.
#pragma once
#include <napi.h>
#include <cerrno>
#include <string>

namespace nstool {

struct SysError {
  int err;
  std::string syscall;
  std::string path;  // may be empty
  std::string dest;  // second path (mount target), may be empty
};

[[noreturn]] inline void Throw(const char* syscall, const std::string& path = "",
                               int err = errno, const std::string& dest = "") {
  throw SysError{err, syscall, path, dest};
}

// Node-style message: "EPERM: operation not permitted, mount '/a' -> '/b'".
Napi::Error ToJsError(Napi::Env env, const SysError& e);

// Bad arguments from JS: a TypeError before any side effect.
[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);

}  // namespace nstool
