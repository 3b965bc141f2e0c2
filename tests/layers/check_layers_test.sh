#!/usr/bin/env bash
# scripts/check_layers.sh passes on the tree, and fails — naming the file, the line and the rule —
# on copies of the tree with one violation planted each: a lower part including a higher one, a
# part opening another's private header, and a public header including src/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
check="$root/scripts/check_layers.sh"
"$check"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
plant() {  # plant FILE LINE MESSAGE: a copy of the tree with LINE appended to FILE fails with FILE:N: MESSAGE
  rm -rf "$work/tree" && mkdir -p "$work/tree" && cp -r "$root/src" "$root/include" "$root/tools" "$work/tree/"
  printf '%s\n' "$2" >>"$work/tree/$1"
  local line expected
  line="$(wc -l <"$work/tree/$1")"
  expected="$1:$line: $3"
  if out="$("$check" --root "$work/tree" 2>&1)"; then
    echo "check_layers passed with $2 in $1" >&2
    exit 1
  fi
  grep -qF -- "$expected" <<<"$out" || { echo "check_layers did not say \"$expected\":" >&2; echo "$out" >&2; exit 1; }
}
plant src/comm/communicator.cc '#include "datarax/spmd.h"' \
  'comm includes "datarax/spmd.h" of spmd, a higher layer'
plant src/spmd/run_spmd.cc '#include "comm/threads/group_communicator.h"' \
  'spmd includes "comm/threads/group_communicator.h", private to comm'
plant src/distributed/per_device.cc '#include "sharding/block_copy.h"' \
  'distributed includes "sharding/block_copy.h", private to sharding'
plant include/datarax/mesh.h '#include "core/strings.h"' \
  'a public header includes "core/strings.h" from src/'
plant src/data/mnist.cc '#include "train/setup.h"' \
  'data includes "train/setup.h" of train, a higher layer'
echo "check_layers_test: the tree passes; 5 planted violations were each found, by file and line"
