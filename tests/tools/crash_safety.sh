#!/usr/bin/env bash
# kill -9 at random moments while datarax-train writes a checkpoint every step (REPS times), each
# run resuming where the last left off: the latest committed checkpoint must always load and resume,
# and the next start must leave no temporary behind (but one caught by the kill before its writer
# locked it, which the start after 60 s removes: aged here, and checked gone at the next start).
# Checkpoints of the default model are 8 MB, so most kills land in a write. The data is a tiny slice of Fashion-MNIST (tests/tools/tiny_data.sh):
# what a checkpoint weighs is the model's, and each of the 40 starts skips loading 60,000 examples.
#
# usage: crash_safety.sh TRAIN WORKDIR REPS
set -u
train=$1 work=$2 reps=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# shellcheck source=tests/tools/tiny_data.sh
source "$here/tiny_data.sh"
tiny_data data 512 100
fail() { echo "FAIL: $*"; exit 1; }
args=(--data-dir data --epochs 1000000 --devices 2 --schedule constant --checkpoint-dir ck --checkpoint-every 1 --keep 2 --log-every 1 --resume)
RANDOM=7  # the same kill times on every run of the test
aged=()
for rep in $(seq 1 "$reps"); do
  "$train" "${args[@]}" --steps 100000 >run.txt 2>&1 &
  pid=$!
  # From the first committed checkpoint on (a kill before it has nothing to resume, by design; under
  # load the first commit's fsync can take longer than the shortest sleep below).
  for _ in $(seq 1 400); do
    grep -q 'loss' run.txt && [[ -n $(find ck -maxdepth 1 -name 'ckpt-*' 2>/dev/null) ]] && break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 400 + 10))"
  kill -9 $pid
  wait $pid 2>/dev/null
  latest=$(find ck -maxdepth 1 -name 'ckpt-*' | sed 's/.*ckpt-//' | sort -n | tail -1)
  [[ -n $latest ]] || { cat run.txt; fail "run $rep: no committed checkpoint"; }
  temps=$(find ck -maxdepth 1 -name '.*tmp-*' | wc -l)
  # Resume from the latest for one more step: it must load, and the start removes the leftovers.
  "$train" "${args[@]}" --steps $((latest + 1)) >resume.txt 2>&1 ||
    { cat resume.txt; fail "run $rep: resuming ckpt-$latest failed"; }
  grep -q "resume: ck/ckpt-$latest (step $latest" resume.txt || { cat resume.txt; fail "run $rep: did not resume ckpt-$latest"; }
  for t in "${aged[@]}"; do [[ ! -e $t ]] || fail "run $rep: an aged temporary was not removed by the next start: $t"; done
  aged=()
  # Left after the next start: only a temporary the kill caught between its creation and its lock
  # (still in the mode no umask gives, 500 for a folder, 200 for a file), which the library leaves
  # alone for 60 s in case its writer is still there. Aged past that here, the next start removes it.
  while IFS= read -r t; do
    [[ -n $t ]] || continue
    mode=$(stat -c %a "$t")
    [[ $mode == 500 || $mode == 200 ]] || fail "run $rep: temporaries left after the next start: $t (mode $mode)"
    touch -h -d "2 minutes ago" "$t"
    echo "run $rep: $t caught before its lock; aged past the grace"
    aged+=("$t")
  done < <(find ck -name '.*tmp-*')
  echo "run $rep: killed at step $(grep -oE 'global [0-9]+' run.txt | tail -1 | grep -oE '[0-9]+'), $temps temporaries left by the kill; ckpt-$latest resumed"
done
echo "PASS: $reps kills, every latest checkpoint resumed, no temporaries left"
