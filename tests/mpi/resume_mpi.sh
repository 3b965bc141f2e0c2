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
# (resume and stop: a tiny slice of Fashion-MNIST, 4 steps per epoch, so that each start skips
# loading 60,000 examples; the runs cross many epochs, each boundary resumed exactly too)
tiny_data data 960 100
common=(--hidden 64 --batch-size 240 --log-every 1 --schedule constant --seed 4)
tiny=(--data-dir data --epochs 1000000)

# losses FILE: "step loss" per step record of a metrics file.
losses() { grep '"step"' "$1" | sed -E 's/.*"step": ([0-9]+), "loss": ([^,]+),.*/\1 \2/'; }

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
  victim=""
  for p in $(pgrep -f -- "$train"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxE 'OMPI_COMM_WORLD_RANK=1|PMI_RANK=1' && victim=$p
  done
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
*) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
