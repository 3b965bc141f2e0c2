#!/usr/bin/env bash
# Per-step losses of datarax's Gpt (bench/gpt_steps) against PyTorch running nanoGPT's architecture
# (nanogpt_reference.py) from one GPT-2-format initial file on the same blocks, SGD and Adam, and
# the reference against itself with the initial parameters perturbed by 1e-7 (relative): how far
# apart two honest f32 trajectories drift.
#   bench/peers/gpt_compare.sh BUILD_DIR TEXT_FILE [STEPS]
set -euo pipefail
build=$1 text=$2 steps=${3:-60}
py=${PYTHON:-/usr/bin/python3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
"$build/bench/gpt_steps" --write-init "$dir/init.safetensors" --n-layer 2 --n-head 4 --n-embd 64 --block-size 32
for run in "sgd 0.1" "adam 1e-3"; do
  set -- $run
  common=(--init "$dir/init.safetensors" --text "$text" --batch 8 --steps "$steps" --opt "$1" --lr "$2")
  "$build/bench/gpt_steps" "${common[@]}" > "$dir/dx_$1"
  "$py" "$here/nanogpt_reference.py" "${common[@]}" > "$dir/pt_$1"
  "$py" "$here/nanogpt_reference.py" "${common[@]}" --perturb 1e-7 > "$dir/ptp_$1"
  "$py" - "$dir" "$1" "$2" <<'PY'
import sys
d, opt, lr = sys.argv[1], sys.argv[2], sys.argv[3]
load = lambda f: [float(l.split()[3]) for l in open(f"{d}/{f}_{opt}")]
a, p, q = load("dx"), load("pt"), load("ptp")
rel = lambda x, y: max(abs(u - v) / abs(v) for u, v in zip(x, y))
print(f"{opt} lr {lr}: {len(a)} steps, loss {a[0]:.6f} -> {a[-1]:.6f}; max relative difference "
      f"datarax vs PyTorch {rel(a, p):.2e}, PyTorch vs PyTorch perturbed 1e-7 {rel(q, p):.2e}")
PY
done
