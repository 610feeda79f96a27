#!/bin/sh
# Builds the native core and the spawn helper with ASan+UBSan (CMakeLists.txt,
# cmake-js) into build-asan/ and runs the native-facing tests against them.
# Node is not built with ASan: the runtime must be preloaded, and leak
# detection is off (V8 and node hold memory to exit by design).
set -eu
cd "$(dirname "$0")/../.."

npx cmake-js build -O build-asan --CDNSTOOL_SANITIZE=ON >build-asan.log 2>&1 || { cat build-asan.log; exit 1; }
addon="$PWD/build-asan/Release/nstool.node"
spawn_helper="$PWD/build-asan/Release/nstool-spawn"
libasan="$(${CC:-gcc} -print-file-name=libasan.so)"
[ -f "$libasan" ] || { echo "sanitize.sh: libasan.so not found (apt-get install gcc)" >&2; exit 1; }

# Child node processes the tests spawn inherit all of this.
export NSTOOL_ADDON="$addon"
export NSTOOL_SPAWN="$spawn_helper"
export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
exec npx vitest run test/reliability "$@"
