#!/usr/bin/env bash
# Fuzzes the parsers that read what users hand in, with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer (clang from Debian's packages, installed here when missing):
#
#   scripts/fuzz.sh [TARGET...] [-- LIBFUZZER FLAGS]     targets: idx safetensors manifest mesh (all)
#   scripts/fuzz.sh idx -- -runs=1000000                  a million inputs of the IDX reader
#   scripts/fuzz.sh -- -max_total_time=600                ten minutes each
#
# Each starts from the committed corpus (tests/fuzz/corpus/<target>/, which the test suite replays)
# and keeps what it finds new in build-fuzz/corpus/<target>/; a crash, leak or sanitizer report
# stops it with the input that caused it (build-fuzz/crash-*). The last line of each run is
# libFuzzer's count of inputs tried ("Done N runs in S second(s)").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DATARAX_FUZZ_BUILD_DIR:-$root/build-fuzz}"
targets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do targets+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#targets[@]} -gt 0 ] || targets=(idx safetensors manifest mesh)
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(-max_total_time=60)

"$root/scripts/install-deps.sh"
need=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "fuzz: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDATARAX_FUZZ=ON -DDATARAX_SANITIZE=address,undefined -DDATARAX_WITH_MPI=OFF -DDATARAX_BUILD_BENCH=OFF \
  -DDATARAX_BUILD_EXAMPLES=OFF >/dev/null
for t in "${targets[@]}"; do
  cmake --build "$build" -j"$(nproc)" --target "${t}_fuzz" 2>&1 | { grep -E 'error|warning' || true; }
done
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  echo "== $t: ${flags[*]}"
  (cd "$build" && ASAN_OPTIONS=detect_leaks=1 "./tests/fuzz/${t}_fuzz" "${flags[@]}" -print_final_stats=1 \
     "corpus/$t" "$root/tests/fuzz/corpus/$t" 2>&1 | grep -E '^(Done|stat::number_of_executed_units|==|SUMMARY|ERROR)|crash-' || true)
done
