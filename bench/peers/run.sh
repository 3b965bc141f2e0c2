#!/usr/bin/env bash
# datarax against PyTorch on the same recipe (MLP 784-512-512-10, Adam, global batch 256,
# Fashion-MNIST), in rounds: each round runs bench/train_throughput on the default model (its
# 2-device DP and ZeRO-1 layouts and 1 device), then PyTorch with 1 and with 2 threads, with
# --torch2 PyTorch 2.x with 1 and 2 threads as well, and with --jax JAX `jit` on 1 device and
# `pmap` on 2. With --bf16 each round also runs bench/train_throughput --precision bf16 (rows
# "datarax bf16 <layout>") and every PyTorch with 1 and 2 threads under
# torch.autocast("cpu", dtype=torch.bfloat16) (bench/peers/pytorch_mlp.py --precision bf16). At the
# end: the median of each contender over the rounds and each one's ratio to the best peer of its
# own precision (f32 rows to the best f32 peer, bf16 rows to the best bf16 peer), then the two
# targets: best datarax f32 / best f32 peer, and best datarax bf16 / PyTorch 2.x bf16 autocast with
# 2 threads (>= 1.25 each). The OpenBLAS variables are unset for every contender. Never part of the
# tests or CI.
#
#   bench/peers/run.sh [--rounds 3] [--build DIR] [--jax] [--torch2] [--bf16]
#   bench/peers/run.sh --cnn [--rounds 3] [--build DIR] [--torch2]
#   bench/peers/run.sh --gpt [--rounds 3] [--build DIR] [--torch2] [--bf16]
#
# With --cnn the recipe is the CNN of --model cnn (nn/models/cnn.h) instead, f32: each round runs
# the trainer itself (bench/model_steps --model cnn: train::train as datarax-train runs it, global
# batch 256) on 1 device and the 2-device layouts (data 2 replicated, ZeRO-1, FSDP; model 2), and
# bench/cnn_step at batch 256 and 128 for the GEMM bound of one device's step (its products at the
# step's own shapes, at the chosen kernel's rate on 1 thread), then bench/peers/pytorch_cnn.py
# with 1 and 2 threads, NCHW and channels_last, for each PyTorch; the targets are best datarax /
# best peer >= 2 and each layout's GEMM bound / its step time >= 0.7.
#
# With --gpt the recipe is nanoGPT's "baby GPT" (6 layers, 6 heads, 384 wide, block 256, global
# batch 8 blocks, Adam) on the bytes of Debian's fortunes: each round runs the trainer
# (bench/model_steps --model gpt) on 1 device and the 2-device layouts, f32 (and with --bf16,
# --precision bf16), and bench/peers/nanogpt_reference.py --time (nanoGPT's model: PyTorch 2's
# scaled_dot_product_attention, 1.13's explicit softmax) with 1 and 2 threads, f32 and (with --bf16)
# under bf16 autocast. Rows are tokens/s; the targets: best datarax f32 / best PyTorch f32 >= 1.25,
# best datarax bf16 / best PyTorch bf16 autocast >= 1.5, and the model FLOPs' rate (6·N + 12·L·T·C
# per token, per core) against the f32 kernel's rate on the GPT's own linear products (bench/
# gpt_steps --gemm-rate: the GEMM bound) >= 0.75.
#
# PyTorch is Debian's python3-torch (1.13, on OpenBLAS): `apt-get install python3-torch`; this
# script does not install it, it says so. With --jax, JAX and optax come from PyPI into a virtual
# environment under the build folder (DIR/peers-venv), made on first use. With --torch2, PyTorch 2.x
# and numpy come from PyPI, unpinned, into DIR/peers-venv-torch2, made on first use (PyPI's torch
# pulls the CUDA wheels, several GB); the version installed is in its rows' names.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds=3
build="$root/build"
jax=0
torch2=0
bf16=0
cnn=0
gpt=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds | --build)
      [ $# -ge 2 ] || { echo "run.sh: $1 needs a value; usage: run.sh [--rounds N] [--build DIR] [--jax] [--torch2] [--bf16] [--cnn|--gpt]" >&2; exit 2; }
      if [ "$1" = --rounds ]; then rounds="$2"; else build="$2"; fi
      shift ;;
    --jax) jax=1 ;;
    --torch2) torch2=1 ;;
    --bf16) bf16=1 ;;
    --cnn) cnn=1 ;;
    --gpt) gpt=1 ;;
    *) echo "run.sh: unknown argument \"$1\"; usage: run.sh [--rounds N] [--build DIR] [--jax] [--torch2] [--bf16] [--cnn|--gpt]" >&2; exit 2 ;;
  esac
  shift
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds \"$rounds\" is not a whole number >= 1" >&2; exit 2; }
if [ "$cnn" = 1 ] && [ "$gpt" = 1 ]; then
  echo "run.sh: --cnn or --gpt, not both" >&2; exit 2
fi
if [ "$gpt" = 1 ] && [ "$jax" = 1 ]; then
  echo "run.sh: --gpt compares with PyTorch only (no --jax)" >&2; exit 2
fi
if [ "$cnn" = 1 ] && { [ "$jax" = 1 ] || [ "$bf16" = 1 ]; }; then
  echo "run.sh: --cnn compares f32 with PyTorch only (no --jax, no --bf16)" >&2; exit 2
fi
bench="$build/bench/train_throughput"
[ "$cnn" = 1 ] && bench="$build/bench/cnn_step"
[ "$gpt" = 1 ] && bench="$build/bench/model_steps"
[ -x "$bench" ] || { echo "run.sh: $bench is missing; build it: cmake --build \"$build\" --target bench_$(basename "$bench")" >&2; exit 2; }
# Debian's python3-torch installs for Debian's Python, which a virtual environment on PATH may hide.
py=/usr/bin/python3
"$py" -c "import torch" 2>/dev/null || { echo "run.sh: PyTorch is missing from $py; apt-get install python3-torch" >&2; exit 2; }

venv="$build/peers-venv"
if [ "$jax" = 1 ] && ! "$venv/bin/python" -c "import jax, optax" 2>/dev/null; then
  echo "run.sh: installing JAX and optax from PyPI into $venv" >&2
  if ! { "$py" -m venv "$venv" && "$venv/bin/pip" install -q jax optax; }; then
    echo "run.sh: could not install JAX into $venv (python3-venv and PyPI are needed)" >&2; exit 2
  fi
fi
venv_torch2="$build/peers-venv-torch2"
if [ "$torch2" = 1 ] && ! "$venv_torch2/bin/python" -c "import torch, numpy" 2>/dev/null; then
  echo "run.sh: installing PyTorch 2.x and numpy from PyPI into $venv_torch2 (several GB)" >&2
  if ! { "$py" -m venv "$venv_torch2" && "$venv_torch2/bin/pip" install -q torch numpy; }; then
    echo "run.sh: could not install PyTorch 2.x into $venv_torch2 (python3-venv and PyPI are needed)" >&2; exit 2
  fi
fi
torch_pys=("$py")
[ "$torch2" = 1 ] && torch_pys+=("$venv_torch2/bin/python")
precisions=(f32)
[ "$bf16" = 1 ] && precisions+=(bf16)

results="$(mktemp)" bounds="$(mktemp)"
trap 'rm -f "$results" "$bounds"' EXIT
# The name of a peer's row: the words of its line before "<number> <unit>" (awk -v unit=samples/s, or
# tokens/s for --gpt); then a tab and the number.
# shellcheck disable=SC2016 # an awk program: its $ are awk's
peer_row='{ for (i = 1; i <= NF; ++i) if (index($(i + 1), unit) == 1) { name = $1; for (j = 2; j < i; ++j) name = name " " $j; print name "\t" $i } }'
if [ "$gpt" = 1 ]; then
  text="$(mktemp)" init="$(mktemp --suffix .safetensors)"
  trap 'rm -f "$results" "$bounds" "$text" "$init"' EXIT
  # The corpus: Debian's fortunes, as datarax-train reads them by default (the files without .dat).
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' -print0 | sort -z | xargs -0 cat > "$text"
  [ -s "$text" ] || { echo "run.sh: no fortunes under /usr/share/games/fortunes (apt-get install fortunes)" >&2; exit 2; }
  sizes=(--n-layer 6 --n-head 6 --n-embd 384 --block-size 256)
  "$build/bench/gpt_steps" --write-init "$init" "${sizes[@]}"
  for ((r = 1; r <= rounds; r++)); do
    for precision in "${precisions[@]}"; do
      out="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$bench" --model gpt --steps 10 --warmup 3 --batch 8 \
        --precision "$precision" --text "$text" "${sizes[@]}")"
      # "  <layout> <step ms> <samples/s> <allocs/step> <tokens/s>"
      awk -v p="$precision" '/^  (1 device|data 2|model 2)/ { name = $1; for (j = 2; j <= NF - 4; ++j) name = name " " $j;
           print "datarax " (p == "bf16" ? "bf16 " : "") name "\t" $NF }' <<<"$out" >>"$results"
    done
    for tpy in "${torch_pys[@]}"; do
      for precision in "${precisions[@]}"; do
        for t in 1 2; do
          auto=()
          [ "$precision" = bf16 ] && auto=(--autocast)
          # "pytorch <version> gpt f32|bf16 autocast (<t> thread[s]) <number> tokens/s, ..."
          line="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$tpy" "$root/bench/peers/nanogpt_reference.py" --init "$init" \
            --text "$text" --batch 8 --steps 9 --time --threads "$t" "${auto[@]}")"
          awk -v unit=tokens/s "$peer_row" <<<"$line" >>"$results"
        done
      done
    done
    echo "round $r of $rounds done" >&2
  done
  # The f32 kernel's rate on a block's linear products at a device's rows (2 devices: 4 blocks of
  # 256), forward and backward, 1 thread: the GEMM bound's rate.
  peak="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$build/bench/gpt_steps" --gemm-rate 1024 --n-embd 384 | awk '/^gemm rate/ { print $3 }')"
  python3 - "$results" "${peak:-0}" <<'PY'
import collections, statistics, sys
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, value = line.rstrip("\n").split("\t")
    runs.setdefault(name, []).append(float(value))
peak = float(sys.argv[2])
med = {k: statistics.median(v) for k, v in runs.items()}
bf16 = lambda k: " bf16" in k
L, C, T, V = 6, 384, 256, 256
N = V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C  # parameters (the head tied to wte)
flops = 6 * N + 12 * L * T * C
print(f"model FLOPs per token (6·N + 12·L·T·C, N = {N}): {flops / 1e6:.1f} M")
print("contender | tokens/s (median) | rounds | ratio to the best PyTorch of its precision | model GFLOP/s per core" +
      (f" / the f32 kernel's {peak:.0f}" if peak else ""))
print("---|---|---|---|---")
best = {}
for p in (False, True):
    peers = [k for k in med if not k.startswith("datarax") and bf16(k) == p]
    if peers:
        best[p] = max(peers, key=med.get)
for k, v in med.items():
    cores = 1 if (k.endswith("1 device") or "(1 thread)" in k) else 2
    rate = v * flops / cores / 1e9
    ratio = f"{v / med[best[bf16(k)]]:.2f}" if bf16(k) in best else "-"
    share = f" ({rate / peak:.2f})" if peak else ""
    print(f"{k} | {v:.0f} | {', '.join(f'{x:.0f}' for x in runs[k])} | {ratio} | {rate:.0f}{share}")
for p, target in ((False, 1.25), (True, 1.5)):
    ours = [k for k in med if k.startswith("datarax") and bf16(k) == p]
    if ours and p in best:
        o = max(ours, key=med.get)
        print(f"target gpt {'bf16' if p else 'f32'}: {o} / {best[p]} = {med[o] / med[best[p]]:.2f} (target >= {target})")
PY
  exit 0
fi
if [ "$cnn" = 1 ]; then
  steps_bin="$build/bench/model_steps"
  [ -x "$steps_bin" ] || { echo "run.sh: $steps_bin is missing; build it: cmake --build \"$build\" --target bench_model_steps" >&2; exit 2; }
  for ((r = 1; r <= rounds; r++)); do
    # The trainer itself (train::train, as datarax-train --model cnn runs it) on each layout:
    # "  <layout> <step ms> <samples/s> <allocs/step>" rows; the step times go to the bound rows.
    out="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$steps_bin" --model cnn --steps 40 --warmup 8)"
    awk '/^  (1 device|data 2|model 2)/ { name = $1; for (j = 2; j <= NF - 3; ++j) name = name " " $j;
         print "datarax " name "\t" $(NF - 1); print "step_ms " name "\t" $(NF - 2) > "/dev/stderr" }' \
      <<<"$out" >>"$results" 2>>"$bounds"
    # The GEMM bound of one device's step (cnn_step: its products at the step's own shapes and the
    # chosen kernel's rate, 1 thread): at batch 256 for 1 device, 128 for each of 2 data devices.
    for b in 256 128; do
      out="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$bench" --batch "$b" --rounds 1 --reps 11)"
      awk -v b="$b" '/^GEMM FLOP per step/ { for (i = 1; i <= NF; ++i) if ($i == "wall,") print "bound_ms " b "\t" $(i - 2) }' <<<"$out" >>"$bounds"
    done
    for tpy in "${torch_pys[@]}"; do
      for t in 1 2; do
        for layout in "" --channels-last; do
          # "pytorch <version> cnn NCHW|channels_last (<t> thread[s]) <number> samples/s, ..."
          line="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$tpy" "$root/bench/peers/pytorch_cnn.py" --threads "$t" --steps 30 $layout)"
          awk -v unit=samples/s "$peer_row" <<<"$line" >>"$results"
        done
      done
    done
    echo "round $r of $rounds done" >&2
  done
  python3 - "$results" "$bounds" <<'PY'
import collections, statistics, sys
def load(path):
    runs = collections.OrderedDict()
    for line in open(path):
        name, value = line.rstrip("\n").split("\t")
        runs.setdefault(name, []).append(float(value))
    return runs
runs, extra = load(sys.argv[1]), load(sys.argv[2])
med = {k: statistics.median(v) for k, v in runs.items()}
peer = max((k for k in med if not k.startswith("datarax")), key=med.get)
print("contender | samples/s (median, wall) | rounds | ratio to the best peer")
print("---|---|---|---")
for k, v in med.items():
    print(f"{k} | {v:.0f} | {', '.join(f'{x:.0f}' for x in runs[k])} | {v / med[peer]:.2f}")
ours = max((k for k in med if k.startswith("datarax")), key=med.get)
print(f"\nbest peer: {peer}")
print(f"target cnn: {ours} / {peer} = {med[ours] / med[peer]:.2f} (target >= 2)")
# GEMM-bound ratio per round: one device's bound at its per-device batch / the trainer's step.
print("\nlayout | step ms (median) | GEMM bound ms (1 thread, per-device batch) | ratio (median of rounds)")
print("---|---|---|---")
for name, b in (("1 device", 256), ("data 2", 128), ("data 2 ZeRO-1", 128), ("data 2 FSDP", 128)):
    steps, bound = extra.get(f"step_ms {name}"), extra.get(f"bound_ms {b}")
    if steps and bound:
        ratios = [x / s for x, s in zip(bound, steps)]
        print(f"{name} | {statistics.median(steps):.2f} | {statistics.median(bound):.2f} | {statistics.median(ratios):.2f}")
PY
  exit 0
fi
for ((r = 1; r <= rounds; r++)); do
  out="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$bench" --rounds 1 --model default)"
  # "layout | devices | MiB | step ms | samples/s | ..." rows of the layouts compared.
  awk -F'|' '$1 ~ /^(1 device|DP|ZeRO-1) $/ { gsub(/ +$/, "", $1); gsub(/ /, "", $5); print "datarax " $1 "\t" $5 }' <<<"$out" >>"$results"
  if [ "$bf16" = 1 ]; then
    out="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$bench" --rounds 1 --model default --precision bf16)" ||
      { echo "run.sh: $bench --precision bf16 failed (does this build have --precision?)" >&2; exit 1; }
    awk -F'|' '$1 ~ /^(1 device|DP|ZeRO-1) $/ { gsub(/ +$/, "", $1); gsub(/ /, "", $5); print "datarax bf16 " $1 "\t" $5 }' <<<"$out" >>"$results"
  fi
  for tpy in "${torch_pys[@]}"; do
    for precision in "${precisions[@]}"; do
      for t in 1 2; do
        # "pytorch <version> f32|bf16 autocast (<t> thread[s]) <number> samples/s, ..."
        line="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$tpy" "$root/bench/peers/pytorch_mlp.py" --threads "$t" --precision "$precision")"
        awk -v unit=samples/s "$peer_row" <<<"$line" >>"$results"
      done
    done
  done
  if [ "$jax" = 1 ]; then
    for mode in jit pmap; do
      line="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$venv/bin/python" "$root/bench/peers/jax_mlp.py" --mode "$mode" --devices 2)"
      awk -v unit=samples/s "$peer_row" <<<"$line" >>"$results"
    done
  fi
  echo "round $r of $rounds done" >&2
done

python3 - "$results" <<'PY'
import collections, re, statistics, sys
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, value = line.rstrip("\n").split("\t")
    runs.setdefault(name, []).append(float(value))
med = {k: statistics.median(v) for k, v in runs.items()}


def precision(name):  # "datarax bf16 DP", "pytorch 2.x bf16 autocast (2 threads)": bf16; the rest f32
    return "bf16" if " bf16" in name else "f32"


best = {}  # the best peer of each precision
for k, v in med.items():
    p = precision(k)
    if not k.startswith("datarax") and (p not in best or v > med[best[p]]):
        best[p] = k
print("contender | samples/s (median) | rounds | ratio to the best peer of its precision")
print("---|---|---|---")
for p in ("f32", "bf16"):
    for k, v in med.items():
        if precision(k) == p:
            ratio = f"{v / med[best[p]]:.2f}" if p in best else "-"
            print(f"{k} | {v:.0f} | {', '.join(f'{x:.0f}' for x in runs[k])} | {ratio}")
print()
for p in ("f32", "bf16"):
    if p in best:
        print(f"best {p} peer: {best[p]}")


def best_datarax(p):
    rows = [k for k in med if k.startswith("datarax") and precision(k) == p]
    return max(rows, key=med.get) if rows else None


# The Done-when targets: f32 >= 1.25x the best f32 peer; bf16 >= 1.25x PyTorch 2.x bf16 autocast, 2 threads.
ours = best_datarax("f32")
if ours and "f32" in best:
    print(f"target f32: {ours} / {best['f32']} = {med[ours] / med[best['f32']]:.2f} (target >= 1.25)")
ours = best_datarax("bf16")
if ours:
    torch2 = [k for k in med if re.match(r"pytorch 2\.\S* bf16 autocast \(2 threads\)$", k)]
    if torch2:
        print(f"target bf16: {ours} / {torch2[0]} = {med[ours] / med[torch2[0]]:.2f} (target >= 1.25)")
    else:
        print("target bf16: needs --torch2 (PyTorch 2.x bf16 autocast with 2 threads)")
    # bf16 >= 1.6x our own f32, layout by layout, in the same rounds.
    for layout in ("1 device", "DP", "ZeRO-1"):
        f32, bf16 = med.get(f"datarax {layout}"), med.get(f"datarax bf16 {layout}")
        if f32 and bf16:
            print(f"datarax bf16 / f32, {layout}: {bf16 / f32:.2f} (target >= 1.6)")
PY
