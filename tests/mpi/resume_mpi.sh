#!/usr/bin/env bash
# Checkpoints and stops across processes.
#   resume     a checkpoint of 1 process x 4 devices resumes under the launcher as 2 processes x 2
#              devices (replicated and ZeRO-1 optimizer state): the per-step losses of steps
#              71..120 equal the uninterrupted run's within 1e-5 relative.
#   stop       SIGINT to one process only: every process stops after the same step, one checkpoint
#              of that step is written, and it resumes.
#   disagree   processes given different settings: refused at start, naming the flag and the
#              processes, each error line prefixed with its process.
#   save_fails --save that fails on process 0 (its folder vanished during training): every process
#              fails, and none says "saved".
#   gpt_killed the GPT over 2 processes x 2 devices (data 2 x model 2, FSDP), checkpoints every 5
#              steps: SIGKILL to rank 1 once a checkpoint past step 10 is committed ends the launcher
#              non-zero within the collective deadline; resumed under the launcher, the run
#              continues from the last committed checkpoint and its losses and final parameters are
#              the uninterrupted run's, bit for bit.
#
# usage: resume_mpi.sh CASE WORKDIR MPIEXEC [FLAGS...] -- TRAIN
set -u
case_name=$1 work=$2
shift 2
launcher=()
while [[ $1 != -- ]]; do launcher+=("$1"); shift; done
shift
train=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
# shellcheck source=tests/tools/tiny_data.sh
source "$here/../tools/tiny_data.sh"
# shellcheck source=tests/mpi/rank_pid.sh
source "$here/rank_pid.sh"
# (resume and stop: a tiny slice of Fashion-MNIST, 4 steps per epoch, so that each start skips
# loading 60,000 examples; the runs cross many epochs, each boundary resumed exactly too)
tiny_data data 960 100
common=(--hidden 64 --batch-size 240 --log-every 1 --schedule constant --seed 4)
tiny=(--data-dir data --epochs 1000000)

# losses FILE: "step loss" per step record of a metrics file.
losses() { grep '"step"' "$1" | sed -E 's/.*"step": ([0-9]+), "loss": ([^,]+),.*/\1 \2/'; }
# latest_step: the step of ck's last committed checkpoint (ckpt-N holding its manifest), or 0.
latest_step() {
  local n=0 d
  for d in ck/ckpt-*; do
    [[ $d =~ ^ck/ckpt-([0-9]+)$ && -f $d/manifest.json ]] && ((10#${BASH_REMATCH[1]} > n)) && n=$((10#${BASH_REMATCH[1]}))
  done
  echo $n
}

case $case_name in
resume)
  for zero in "" --shard-optimizer-state; do
    rm -rf ck && mkdir ck
    "$train" --devices 4 "${common[@]}" "${tiny[@]}" --steps 120 $zero --metrics-out whole.jsonl >whole.txt 2>&1 || { cat whole.txt; fail "the whole run"; }
    "$train" --devices 4 "${common[@]}" "${tiny[@]}" --steps 120 $zero --checkpoint-dir ck --checkpoint-every 70 --keep 5 >first.txt 2>&1 ||
      { cat first.txt; fail "the first run"; }
    [[ -d ck/ckpt-70 ]] || fail "no ckpt-70"
    "${launcher[@]}" -n 2 "$train" --devices 2 "${common[@]}" "${tiny[@]}" --steps 120 $zero --resume ck/ckpt-70 --metrics-out resumed.jsonl \
      >resumed.txt 2>&1 || { cat resumed.txt; fail "the resumed run under the launcher"; }
    grep -q 'resume: ck/ckpt-70 (step 70' resumed.txt || { cat resumed.txt; fail "did not resume ckpt-70"; }
    join <(losses whole.jsonl | awk '$1 > 70') <(losses resumed.jsonl) >pairs.txt
    [[ $(wc -l <pairs.txt) == 50 ]] || { cat pairs.txt; fail "expected steps 71..120 in both runs"; }
    awk -v what="1 x 4 -> 2 x 2 ${zero:-replicated}" '{ d = $2 - $3; if (d < 0) d = -d; a = $2 < 0 ? -$2 : $2;
         r = d / a; if (r > worst) worst = r; if (r > 1e-5) { print "step " $1 ": " $2 " vs " $3; bad = 1 } }
         END { printf "%s: largest relative loss difference over steps 71..120: %.3g\n", what, worst; exit bad }' pairs.txt ||
      fail "losses differ"
  done
  ;;
stop)
  rm -rf ck && mkdir ck
  "${launcher[@]}" -n 2 "$train" --devices 1 "${common[@]}" "${tiny[@]}" --checkpoint-dir ck >run.txt 2>&1 &
  launcher_pid=$!
  for _ in $(seq 1 600); do grep -q 'loss' run.txt && break; sleep 0.05; done
  sleep 0.5
  victim=$(rank_pid 1 "$train")
  [[ -n $victim ]] || { kill -9 $launcher_pid; fail "no process of rank 1"; }
  kill -INT "$victim"
  wait $launcher_pid
  rc=$?
  [[ $rc != 0 ]] || { cat run.txt; fail "the launcher exited 0 after a stop by SIGINT"; }
  stopped=$(grep -oE 'stopped at step [0-9]+' run.txt | grep -oE '[0-9]+')
  [[ -n $stopped ]] || { cat run.txt; fail "no 'stopped at step'"; }
  ckpts=$(cd ck && ls -d ckpt-*)  # (beside the folder's datarax-run.json and datarax.lock)
  [[ $ckpts == "ckpt-$stopped" ]] || { cat run.txt; fail "expected only ckpt-$stopped, found: $ckpts"; }
  # The same step on both: each process's last step is the checkpoint's (process 0 reports; the
  # checkpoint holds what every process computed up to it, and it resumes on one process).
  "$train" --devices 2 "${common[@]}" "${tiny[@]}" --steps $((stopped + 2)) --checkpoint-dir ck --resume >resume.txt 2>&1 ||
    { cat resume.txt; fail "resuming the stop's checkpoint"; }
  grep -q "resume: ck/ckpt-$stopped (step $stopped" resume.txt || { cat resume.txt; fail "did not resume"; }
  echo "SIGINT to rank 1: every process stopped after step $stopped (launcher exit $rc); ckpt-$stopped resumed"
  ;;
disagree)
  "${launcher[@]}" -n 2 bash -c 'if [ "${OMPI_COMM_WORLD_RANK:-$PMI_RANK}" = 1 ]; then exec "$0" --devices 1 --steps 5 --lr 0.002; else exec "$0" --devices 1 --steps 5; fi' \
    "$train" >run.txt 2>&1
  rc=$?
  [[ $rc == 2 ]] || { cat run.txt; fail "exit $rc, expected 2"; }
  grep -qE 'datarax-train: process [01]: --lr 0.00[12]: differs between processes: process [01] has 0.00[12]' run.txt ||
    { cat run.txt; fail "no message naming --lr and the processes"; }
  grep -q 'loss' run.txt && { cat run.txt; fail "training started"; }
  ;;
save_fails)
  mkdir -p out/sub
  "${launcher[@]}" -n 2 "$train" --devices 1 --steps 300 --save out/sub/p.safetensors >run.txt 2>&1 &
  launcher_pid=$!
  for _ in $(seq 1 600); do grep -q 'loss' run.txt && break; sleep 0.05; done
  rm -rf out/sub
  wait $launcher_pid
  rc=$?
  [[ $rc != 0 ]] || { cat run.txt; fail "the launcher exited 0 although --save failed"; }
  grep -q 'saved:' run.txt && { cat run.txt; fail "a process said saved"; }
  grep -q -- '--save out/sub/p.safetensors' run.txt || { cat run.txt; fail "no message names --save"; }
  ;;
gpt_killed)
  # A text of its own (24 kB: 168 steps of 8 blocks of 16 bytes per epoch), so that the test does
  # not depend on the default corpus.
  awk 'BEGIN { for (i = 0; i < 24000; ++i) printf "%c", i % 61 == 60 ? 10 : 97 + (i * 7 + int(i / 13)) % 26 }' >text.txt
  steps=150
  # One matmul kernel for every process of the three runs: each measures its own otherwise, and under
  # load a measurement may choose another kernel, which rounds differently (the losses are compared
  # bit for bit). OpenBLAS, the reference, runs on every CPU.
  export DATARAX_MATMUL_KERNEL_F32=openblas
  gpt=(--model gpt --text text.txt --n-layer 1 --n-embd 32 --n-head 2 --block-size 16 --batch-size 8 --schedule constant
       --epochs 1000 --steps $steps --log-every 1 --devices 2 --mesh data=2,model=2 --fsdp)
  "${launcher[@]}" -n 2 "$train" "${gpt[@]}" --metrics-out whole.jsonl --save whole.safetensors >whole.txt 2>&1 ||
    { cat whole.txt; fail "the uninterrupted run"; }
  rm -rf ck
  deadline=3
  DATARAX_COLLECTIVE_TIMEOUT_S=$deadline "${launcher[@]}" -n 2 "$train" "${gpt[@]}" --checkpoint-dir ck --checkpoint-every 5 \
    >killed.txt 2>&1 &
  launcher_pid=$!
  # Until a checkpoint past step 10 is committed (ckpt-N holding its manifest)...
  while (($(latest_step) <= 10)) && kill -0 $launcher_pid 2>/dev/null; do sleep 0.05; done
  (($(latest_step) > 10)) || { cat killed.txt; fail "the run ended without a checkpoint past step 10"; }
  victim=$(rank_pid 1 "$train")
  [[ -n $victim ]] || { kill -9 $launcher_pid; cat killed.txt; fail "no process of rank 1"; }
  kill -KILL "$victim"
  hit=$(date +%s%N)
  # ... then the launcher must end within the deadline and a margin, not with 0.
  for _ in $(seq 1 $(((deadline + 10) * 20))); do
    kill -0 $launcher_pid 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 $launcher_pid 2>/dev/null; then
    kill -9 $launcher_pid
    cat killed.txt
    fail "the launcher still runs $((deadline + 10)) s after SIGKILL to rank 1"
  fi
  wait $launcher_pid
  rc=$?
  took_ms=$((($(date +%s%N) - hit) / 1000000))
  [[ $rc != 0 ]] || { cat killed.txt; fail "the launcher exited 0 after rank 1 was killed"; }
  last=$(latest_step)
  ((last < steps)) || { cat killed.txt; fail "the run reached its end (ckpt-$last) before the kill; raise its --steps"; }
  "${launcher[@]}" -n 2 "$train" "${gpt[@]}" --checkpoint-dir ck --checkpoint-every 5 --resume --metrics-out resumed.jsonl \
    --save resumed.safetensors >resumed.txt 2>&1 || { cat resumed.txt; fail "the resumed run"; }
  grep -q "resume: ck/ckpt-$last (step $last" resumed.txt || { cat resumed.txt; fail "did not resume the last checkpoint, ckpt-$last"; }
  join <(losses whole.jsonl | awk -v last="$last" '$1 > last') <(losses resumed.jsonl) >pairs.txt
  [[ $(wc -l <pairs.txt) == $((steps - last)) ]] || { cat pairs.txt; fail "expected steps $((last + 1))..$steps in both runs"; }
  awk '$2 != $3 { print "step " $1 ": " $2 " vs " $3; bad = 1 } END { exit bad }' pairs.txt || fail "losses differ"
  cmp -s whole.safetensors resumed.safetensors || fail "the final parameters differ (--save files)"
  echo "SIGKILL to rank 1 after ckpt-$last: launcher exit $rc after $took_ms ms; resumed from ckpt-$last, steps $((last + 1))..$steps equal"
  ;;
*) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
