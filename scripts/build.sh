#!/usr/bin/env bash
# Configures and builds datarax into build/ (or $DATARAX_BUILD_DIR). Used by run.sh and test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DATARAX_BUILD_DIR:-$root/build}"
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDATARAX_WERROR=ON "$@" >/dev/null
# Progress lines are dropped; warnings and errors show. With pipefail the build's status decides.
cmake --build "$build" -j"$(nproc)" 2>&1 | { grep -vE '^\[ *[0-9]+%\]|^(Consolidate|Built target|gmake)' || true; }
