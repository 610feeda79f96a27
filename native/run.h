// Running a program without forking Node (posix_spawn), waited for on the loop.
#pragma once
#include <napi.h>

namespace nstool {
void InitRun(Napi::Env env, Napi::Object exports);
}
