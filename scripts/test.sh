#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds, and runs every test through CTest; then
# builds the multithreaded runtime's tests with ThreadSanitizer and runs them again under it.
# DATARAX_SKIP_TSAN=1 skips that second pass (a quicker local loop).
#
# The ThreadSanitizer build runs while the first CTest pass does, at the lowest CPU and I/O
# priority (nice 19, ionice idle): it takes only the CPU time the tests leave unused (processes
# waiting for a signal, a deadline, a launcher or a disk), so the tests' timings are as before
# and the build is mostly done when they end. Its output is shown after the first pass.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DATARAX_BUILD_DIR:-$root/build}"
jobs="$(nproc)"

# A test that cannot run for want of something this script installs (the Fashion-MNIST data) fails
# here instead of skipping (tests/support/skip.h).
export DATARAX_STRICT_TESTS=1

"$root/scripts/build.sh"

tsan="${DATARAX_TSAN_BUILD_DIR:-$root/build-tsan}"
tsan_pid=""
if [ "${DATARAX_SKIP_TSAN:-0}" != 1 ]; then
  mkdir -p "$tsan"
  low=(nice -n 19)
  command -v ionice >/dev/null && low=(ionice -c 3 "${low[@]}")
  # -g1: line tables and inlined frames, all a ThreadSanitizer report shows (function, file:line
  # of each frame); GCC's full -g of RelWithDebInfo added a fifth to this build's compile time, for
  # variables' descriptions that only a debugger reads. The instrumentation is the same.
  # setsid: a process group of its own, so that it can be stopped whole if the first pass fails.
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid "${low[@]}" bash -c '
    set -eo pipefail
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDATARAX_SANITIZE=thread \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
      -DDATARAX_WERROR=ON -DDATARAX_BUILD_BENCH=OFF >/dev/null
    cmake --build "$2" -j"$3" --target runtime_tests' _ "$root" "$tsan" "$jobs" >"$tsan/build.log" 2>&1 &
  tsan_pid=$!
  trap 'kill -TERM -- "-$tsan_pid" 2>/dev/null || true' EXIT
fi

(cd "$build" && ctest --output-on-failure -j"$jobs" --timeout 300)

if [ -n "$tsan_pid" ]; then
  echo "== ThreadSanitizer pass over the runtime tests (ctest -L runtime in $tsan)"
  tsan_rc=0
  wait "$tsan_pid" || tsan_rc=$?
  trap - EXIT
  # Progress lines are dropped; warnings and errors show.
  grep -vE '^\[ *[0-9]+%\]|^(Consolidate|Built target|gmake)' "$tsan/build.log" || true
  [ "$tsan_rc" = 0 ] || { echo "test.sh: the ThreadSanitizer build failed (exit $tsan_rc)" >&2; exit "$tsan_rc"; }
  (cd "$tsan" && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --output-on-failure -j"$jobs" --timeout 600 -L runtime)
fi
