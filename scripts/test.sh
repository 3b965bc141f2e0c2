#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds, and runs every test through CTest; then
# builds the multithreaded runtime's tests with ThreadSanitizer and runs them again under it.
# DATARAX_SKIP_TSAN=1 skips that second pass (a quicker local loop).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DATARAX_BUILD_DIR:-$root/build}"
jobs="$(nproc)"

# A test that cannot run for want of something this script installs (the Fashion-MNIST data) fails
# here instead of skipping (tests/support/skip.h).
export DATARAX_STRICT_TESTS=1

"$root/scripts/build.sh"
(cd "$build" && ctest --output-on-failure -j"$jobs" --timeout 300)

if [ "${DATARAX_SKIP_TSAN:-0}" != 1 ]; then
  tsan="${DATARAX_TSAN_BUILD_DIR:-$root/build-tsan}"
  echo "== ThreadSanitizer pass over the runtime tests (ctest -L runtime in $tsan)"
  # -g1: line tables and inlined frames, all a ThreadSanitizer report shows (function, file:line
  # of each frame); GCC's full -g of RelWithDebInfo added a fifth to this build's compile time, for
  # variables' descriptions that only a debugger reads. The instrumentation is the same.
  cmake -S "$root" -B "$tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDATARAX_SANITIZE=thread \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DDATARAX_WERROR=ON -DDATARAX_BUILD_BENCH=OFF >/dev/null
  cmake --build "$tsan" -j"$jobs" --target runtime_tests 2>&1 |
    { grep -vE '^\[ *[0-9]+%\]|^(Consolidate|Built target|gmake)' || true; }
  (cd "$tsan" && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --output-on-failure -j"$jobs" --timeout 600 -L runtime)
fi
