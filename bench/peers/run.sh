#!/usr/bin/env bash
# datarax against PyTorch on the same recipe (MLP 784-512-512-10, Adam, global batch 256,
# Fashion-MNIST), in rounds: each round runs bench/train_throughput on the default model (its
# 2-device DP and ZeRO-1 layouts and 1 device), then PyTorch with 1 and with 2 threads, and with
# --jax JAX `jit` on 1 device and `pmap` on 2; at the end the median of each contender over the
# rounds and each one's ratio to the best peer. The OpenBLAS variables are unset for every
# contender. Never part of the tests or CI.
#
#   bench/peers/run.sh [--rounds 3] [--build DIR] [--jax]
#
# PyTorch is Debian's python3-torch (1.13, on OpenBLAS): `apt-get install python3-torch`; this
# script does not install it, it says so. With --jax, JAX and optax come from PyPI into a virtual
# environment under the build folder (DIR/peers-venv), made on first use.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds=3
build="$root/build"
jax=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds | --build)
      [ $# -ge 2 ] || { echo "run.sh: $1 needs a value; usage: run.sh [--rounds N] [--build DIR] [--jax]" >&2; exit 2; }
      if [ "$1" = --rounds ]; then rounds="$2"; else build="$2"; fi
      shift ;;
    --jax) jax=1 ;;
    *) echo "run.sh: unknown argument \"$1\"; usage: run.sh [--rounds N] [--build DIR] [--jax]" >&2; exit 2 ;;
  esac
  shift
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds \"$rounds\" is not a whole number >= 1" >&2; exit 2; }
bench="$build/bench/train_throughput"
[ -x "$bench" ] || { echo "run.sh: $bench is missing; build it: cmake --build \"$build\" --target bench_train_throughput" >&2; exit 2; }
# Debian's python3-torch installs for Debian's Python, which a virtual environment on PATH may hide.
py=/usr/bin/python3
"$py" -c "import torch" 2>/dev/null || { echo "run.sh: PyTorch is missing from $py; apt-get install python3-torch" >&2; exit 2; }

venv="$build/peers-venv"
if [ "$jax" = 1 ] && ! "$venv/bin/python" -c "import jax, optax" 2>/dev/null; then
  echo "run.sh: installing JAX and optax from PyPI into $venv" >&2
  "$py" -m venv "$venv" && "$venv/bin/pip" install -q jax optax ||
    { echo "run.sh: could not install JAX into $venv (python3-venv and PyPI are needed)" >&2; exit 2; }
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for ((r = 1; r <= rounds; r++)); do
  out="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$bench" --rounds 1 --model default)"
  # "layout | devices | MiB | step ms | samples/s | ..." rows of the layouts compared.
  awk -F'|' -v r="$r" '$1 ~ /^(1 device|DP|ZeRO-1) $/ { gsub(/ +$/, "", $1); gsub(/ /, "", $5); print "datarax " $1 "\t" $5 }' <<<"$out" >>"$results"
  for t in 1 2; do
    line="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$root/bench/peers/pytorch_mlp.py" --threads "$t")"
    echo "$line" | awk -v t="$t" '{ for (i = 1; i <= NF; ++i) if ($(i + 1) ~ /^samples\/s/) print $1 " " $2 " " t " thread(s)\t" $i }' >>"$results"
  done
  if [ "$jax" = 1 ]; then
    for mode in jit pmap; do
      line="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$venv/bin/python" "$root/bench/peers/jax_mlp.py" --mode "$mode" --devices 2)"
      echo "$line" | awk '{ for (i = 1; i <= NF; ++i) if ($(i + 1) ~ /^samples\/s/) { name = $1 " " $2; for (j = 3; j < i; ++j) name = name " " $j; print name "\t" $i } }' >>"$results"
    done
  fi
  echo "round $r of $rounds done" >&2
done

python3 - "$results" <<'PY'
import collections, statistics, sys
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, value = line.rstrip("\n").split("\t")
    runs.setdefault(name, []).append(float(value))
med = {k: statistics.median(v) for k, v in runs.items()}
peers = {k: v for k, v in med.items() if not k.startswith("datarax")}
best = max(peers, key=peers.get)
print("contender | samples/s (median) | rounds | ratio to the best peer")
print("---|---|---|---")
for k, v in med.items():
    print(f"{k} | {v:.0f} | {', '.join(f'{x:.0f}' for x in runs[k])} | {v / peers[best]:.2f}")
print(f"\nbest peer: {best}")
PY
