#!/usr/bin/env bash
# Checks the layering of ../shared/DESIGN.md on every #include "..." of src/, include/ and tools/:
#
#   core -> device -> comm -> mesh -> sharding -> spmd -> distributed -> {nn, optim, io, data} -> train -> tools
#
# A file may include a header of its own part, or a header of a part BELOW it (earlier in the list;
# nn, optim, io and data share a level and may use each other's public headers). A part's src/
# headers are its own (private): another part may include only those the part offers to the parts
# above it, listed in INTERFACE below (docs/architecture.md says why each is there). Public headers
# (include/datarax/) include only public headers.
#
#   scripts/check_layers.sh [--list] [--root DIR]
#
# --list prints every include it checks; --root checks another copy of the tree (the test suite
# checks one with a violation planted, to see this script fail). Exits 1 naming every violation,
# 0 when there is none.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list=0
while [ $# -gt 0 ]; do
  case "$1" in
    --list) list=1 ;;
    --root) root="$2"; shift ;;
    *) echo "check_layers: unknown argument \"$1\"; usage: check_layers.sh [--list] [--root DIR]" >&2; exit 2 ;;
  esac
  shift
done
cd "$root"

# Level of each part: lower numbers are lower layers.
declare -A LEVEL=(
  [core]=0 [device]=1 [comm]=2 [mesh]=3 [sharding]=4 [spmd]=5 [distributed]=6
  [nn]=7 [optim]=7 [io]=7 [data]=7 [train]=8 [tools]=9
)

# The part each public header belongs to (include/datarax/<name>). Headers in a folder
# (include/datarax/nn/...) belong to the part of that name.
declare -A PUBLIC=(
  [array.h]=core [dtype.h]=core [half.h]=core [shape.h]=core [tree.h]=core [error.h]=core
  [device.h]=core [reduce_op.h]=core [version.h]=core [phase_timer.h]=core
  [device_discovery.h]=device
  [communicator.h]=comm [process_collectives.h]=comm
  [mesh.h]=mesh
  [partition_spec.h]=sharding [named_sharding.h]=sharding [sharded_array.h]=sharding
  [sharded_tree.h]=sharding [tree_spec.h]=sharding [sharding_rules.h]=sharding
  [spmd.h]=spmd [collectives.h]=spmd [shard_map.h]=spmd [pmap.h]=spmd [vmap.h]=spmd
  [datarax.h]=tools  # the umbrella header includes everything; only tools and users include it
)

# src/ headers a part offers to the parts above it. Everything else under src/<part>/ is private.
INTERFACE=(
  core/*                      # the primitives every part uses (strings, wait word, buffer cache, ...)
  device/process_group.h      # the other processes' devices on this host, and ending a job
  device/mpi/world.h          # the MPI bootstrap's communicator, for comm's MPI backend
  comm/backends.h             # the backend factory, for the SPMD runtime
  comm/group_communicator.h   # what the SPMD runtime needs of a group, whatever its backend
)

part_of_file() {  # part of a file under src/, include/ or tools/
  local f="$1"
  case "$f" in
    src/*) f="${f#src/}"; echo "${f%%/*}" ;;
    tools/*) echo tools ;;
    include/datarax/*/*) f="${f#include/datarax/}"; echo "${f%%/*}" ;;
    include/datarax/*) echo "${PUBLIC[${f#include/datarax/}]:-?}" ;;
  esac
}

in_interface() {
  local h="$1" pattern
  for pattern in "${INTERFACE[@]}"; do
    # shellcheck disable=SC2053  # the patterns are globs on purpose
    [[ "$h" == $pattern ]] && return 0
  done
  return 1
}

violations=()
checked=0
while IFS= read -r file; do
  from="$(part_of_file "$file")"
  if [ -z "$from" ] || [ "$from" = "?" ]; then
    violations+=("$file: the file belongs to no part; add it to PUBLIC in scripts/check_layers.sh")
    continue
  fi
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    n="${line%%:*}"
    header="$(sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$line")"
    checked=$((checked + 1))
    [ $list = 1 ] && echo "$file:$n: $from -> $header"
    case "$header" in
      datarax/*/*) to="${header#datarax/}"; to="${to%%/*}"; kind=public ;;
      datarax/*) to="${PUBLIC[${header#datarax/}]:-?}"; kind=public ;;
      *)
        if [ "$from" = tools ] && [ -f "tools/$header" ]; then continue; fi  # a tool's own header
        to="${header%%/*}"; kind=private ;;
    esac
    if [ -z "${LEVEL[$to]:-}" ]; then
      violations+=("$file:$n: includes \"$header\", which belongs to no part")
      continue
    fi
    if [ "$to" = "$from" ]; then continue; fi
    if [[ "$file" == include/* ]] && [ $kind = private ]; then
      violations+=("$file:$n: a public header includes \"$header\" from src/")
      continue
    fi
    if [ "${LEVEL[$to]}" -gt "${LEVEL[$from]}" ]; then
      violations+=("$file:$n: $from includes \"$header\" of $to, a higher layer")
      continue
    fi
    if [ $kind = private ] && ! in_interface "$header"; then
      violations+=("$file:$n: $from includes \"$header\", private to $to")
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done < <(find src include tools -type f \( -name '*.h' -o -name '*.cc' \) | sort)

if [ ${#violations[@]} -gt 0 ]; then
  printf 'check_layers: %s\n' "${violations[@]}" >&2
  echo "check_layers: ${#violations[@]} of $checked includes break the layering of ../shared/DESIGN.md" >&2
  exit 1
fi
echo "check_layers: $checked includes, all within the layers"
