#!/usr/bin/env bash
# A run owns its checkpoint folder, and a checkpoint verifies itself (issue 21, items 3 and 4):
# each case was a defect of the tools before (docs/reliability.md, "Checkpoints and resume").
#   fresh_into_used     a fresh run into a folder of another run's checkpoints: refused before the
#                       first step, nothing deleted (was: --keep 2 deleted each new checkpoint at
#                       once, exit 0; or "exists already" after the training)
#   resume_not_latest   resuming ckpt-4 when ckpt-8 exists: refused before the first step
#   two_runs            a second run on a folder in use is refused, naming the first's process; the
#                       lock of a run killed with -9 is gone, and the next run resumes
#   outputs_inside      --save, --metrics-out, --plot inside a checkpoint folder: refused
#   keep_own_run        --keep deletes only the folder's own run's checkpoints
#   symlinked_folder    a --checkpoint-dir that is a symbolic link to a folder works
#   manifest_counters   "epoch": 99 at step 8: refused, naming manifest.json (was: done: 0 steps)
#   damaged_tensor      a flipped byte in params.safetensors: refused, naming it (was: resumed)
#
# usage: checkpoint_folders.sh CASE TRAIN WORKDIR
set -u
case_name=$1 train=$2 work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# shellcheck source=tests/tools/tiny_data.sh
source "$here/tiny_data.sh"
tiny_data data 480 100
# 8 steps per epoch; a step takes well under a millisecond.
tiny=(--data-dir data --devices 1 --hidden 16 --batch-size 60 --schedule constant --log-every 1 --epochs 1000)

fail() { echo "FAIL: $*"; exit 1; }
# run EXPECTED_RC PATTERN -- command...: its exit code and that its output matches.
run() {
  local want=$1 pattern=$2
  shift 3
  "$@" >out.txt 2>&1
  local rc=$?
  [[ $rc == "$want" ]] || { cat out.txt; fail "exit $rc, expected $want: $*"; }
  grep -qE -- "$pattern" out.txt || { cat out.txt; fail "no \"$pattern\" in the output of: $*"; }
}
# refused PATTERN -- command...: exit 2 with PATTERN, before any step ran.
refused() {
  run 2 "$@"
  grep -q 'loss' out.txt && { cat out.txt; fail "training started before the refusal: ${*:3}"; }
  return 0
}
listing() { (cd "$1" 2>/dev/null && ls -d ckpt-* 2>/dev/null | sort -V | tr '\n' ' '); }

case $case_name in
fresh_into_used)
  run 0 'done: 200 steps' -- "$train" "${tiny[@]}" --seed 1 --steps 200 --checkpoint-dir ck --checkpoint-every 100
  before=$(cat ck/ckpt-100/manifest.json ck/ckpt-200/manifest.json | md5sum)
  refused 'checkpoint-dir ck: holds checkpoints of another run \(ckpt-100 .. ckpt-200, 2 checkpoints of run [0-9a-f]{32}\); continue that run by resuming its latest checkpoint, or start this one in an empty folder' -- \
    "$train" "${tiny[@]}" --steps 12 --checkpoint-dir ck --checkpoint-every 3 --keep 2
  [[ $(listing ck) == "ckpt-100 ckpt-200 " ]] || fail "the folder changed: $(listing ck)"
  [[ $(cat ck/ckpt-100/manifest.json ck/ckpt-200/manifest.json | md5sum) == "$before" ]] || fail "a checkpoint changed"
  # The same settings again (its first checkpoint would be "exists already" after the training).
  run 0 'done: 4 steps' -- "$train" "${tiny[@]}" --steps 4 --checkpoint-dir ck2 --checkpoint-every 2
  refused 'checkpoint-dir ck2: holds checkpoints of another run \(ckpt-2 .. ckpt-4' -- \
    "$train" "${tiny[@]}" --steps 4 --checkpoint-dir ck2 --checkpoint-every 2
  # Continuing it is --resume.
  run 0 'resume: ck2/ckpt-4 \(step 4' -- "$train" "${tiny[@]}" --steps 6 --checkpoint-dir ck2 --checkpoint-every 2 --resume
  ;;
resume_not_latest)
  run 0 'done: 8 steps' -- "$train" "${tiny[@]}" --steps 8 --checkpoint-dir ck --checkpoint-every 4
  refused '--resume ck/ckpt-4: not the latest checkpoint of the checkpoint folder "ck" \(ckpt-8 is\).*resume the latest, or write this run.s checkpoints to an empty folder' -- \
    "$train" "${tiny[@]}" --steps 12 --checkpoint-dir ck --checkpoint-every 4 --resume ck/ckpt-4
  [[ $(listing ck) == "ckpt-4 ckpt-8 " ]] || fail "the folder changed: $(listing ck)"
  # Into an empty folder it is a new history of its own, and fine.
  run 0 'done: 4 steps' -- "$train" "${tiny[@]}" --steps 8 --checkpoint-dir other --checkpoint-every 4 --resume ck/ckpt-4
  [[ $(listing other) == "ckpt-8 " ]] || fail "other: $(listing other)"
  ;;
two_runs)
  "$train" "${tiny[@]}" --steps 100000000 --checkpoint-dir ck --checkpoint-every 50 --keep 2 >first.txt 2>&1 &
  first=$!
  # Listed while the run renames checkpoints in and out (--keep): a listing can miss them, so a
  # checkpoint seen once is looked for a few times.
  for _ in $(seq 1 400); do [[ -n $(listing ck) ]] && break; sleep 0.05; done
  for _ in 1 2 3 4 5; do [[ -n $(listing ck) ]] && break; sleep 0.02; done
  [[ -n $(listing ck) ]] || { kill -9 $first; cat first.txt; fail "the first run wrote no checkpoint"; }
  refused "checkpoint-dir ck: in use by another run \(process $first on host $(hostname)\); wait for that run to end, or give this run a folder of its own" -- \
    "$train" "${tiny[@]}" --steps 100000000 --checkpoint-dir ck --checkpoint-every 1 --keep 2 --resume
  kill -0 $first || { cat first.txt; fail "the first run died"; }
  kill -9 $first
  wait $first 2>/dev/null
  # The killed run's lock went with it (the kernel releases an flock): the next run resumes.
  latest=$(listing ck | tr ' ' '\n' | grep . | tail -1)
  run 0 "resume: ck/$latest " -- "$train" "${tiny[@]}" --steps $((${latest#ckpt-} + 2)) --checkpoint-dir ck --checkpoint-every 1 --resume
  ;;
outputs_inside)
  run 0 'done: 4 steps' -- "$train" "${tiny[@]}" --steps 4 --checkpoint-dir ck --checkpoint-every 4
  sum=$(cat ck/ckpt-4/* | md5sum)
  refused '--save ck/ckpt-4/params.safetensors: inside the checkpoint folder .*ck/ckpt-4, whose files belong to its checkpoints' -- \
    "$train" "${tiny[@]}" --steps 6 --checkpoint-dir ck --resume --save ck/ckpt-4/params.safetensors
  refused '--save ck/ckpt-4/params.safetensors: inside the checkpoint folder' -- "$train" "${tiny[@]}" --steps 2 --save ck/ckpt-4/params.safetensors
  refused '--metrics-out ck/m.jsonl: inside the checkpoint folder .*/ck,' -- "$train" "${tiny[@]}" --steps 2 --metrics-out ck/m.jsonl
  refused '--plot new/p.png: inside the checkpoint folder .*/new,' -- "$train" "${tiny[@]}" --steps 2 --checkpoint-dir new --plot new/p.png
  refused '--checkpoint-dir ck/ckpt-4/sub: inside the checkpoint folder .*ck/ckpt-4;' -- "$train" "${tiny[@]}" --steps 2 --checkpoint-dir ck/ckpt-4/sub
  [[ $(cat ck/ckpt-4/* | md5sum) == "$sum" && $(ls ck/ckpt-4 | wc -l) == 3 ]] || fail "ckpt-4 changed"
  ;;
keep_own_run)
  run 0 'done: 2 steps' -- "$train" "${tiny[@]}" --seed 3 --steps 2 --checkpoint-dir a --checkpoint-every 2
  run 0 'done: 20 steps' -- "$train" "${tiny[@]}" --steps 20 --checkpoint-dir b --checkpoint-every 10
  cp -r a/ckpt-2 b/ckpt-2  # another run's checkpoint, older than b's latest
  run 0 'done: 20 steps' -- "$train" "${tiny[@]}" --steps 40 --checkpoint-dir b --checkpoint-every 10 --keep 1 --resume
  grep -q 'resume: b/ckpt-20 ' out.txt || { cat out.txt; fail "did not resume b/ckpt-20"; }
  [[ $(listing b) == "ckpt-2 ckpt-40 " ]] || fail "expected the other run's ckpt-2 and this run's ckpt-40: $(listing b)"
  ;;
symlinked_folder)
  mkdir real && ln -s real ck
  run 0 'done: 4 steps' -- "$train" "${tiny[@]}" --steps 4 --checkpoint-dir ck --checkpoint-every 2
  [[ $(listing real) == "ckpt-2 ckpt-4 " ]] || fail "real: $(listing real)"
  run 0 'resume: ck/ckpt-4 \(step 4' -- "$train" "${tiny[@]}" --steps 6 --checkpoint-dir ck --checkpoint-every 2 --resume
  [[ -L ck && $(listing real) == "ckpt-2 ckpt-4 ckpt-6 " ]] || fail "real: $(listing real)"
  ;;
manifest_counters)
  run 0 'done: 8 steps' -- "$train" "${tiny[@]}" --steps 8 --checkpoint-dir ck --checkpoint-every 8
  sed -i 's/"epoch": 1,/"epoch": 99,/' ck/ckpt-8/manifest.json
  grep -q '"epoch": 99' ck/ckpt-8/manifest.json || fail "the edit did not take"
  refused '--resume ck/ckpt-8: load_checkpoint: "ck/ckpt-8/manifest.json": "epoch" 99 and "step_in_epoch" 8 do not match "step" 8' -- \
    "$train" "${tiny[@]}" --steps 16 --resume ck/ckpt-8
  sed -i 's/"epoch": 99,/"epoch": 1,/; s/"step": 8,/"step": 9,/' ck/ckpt-8/manifest.json
  refused 'manifest.json": "epoch" 1 and "step_in_epoch" 8 do not match "step" 9' -- "$train" "${tiny[@]}" --steps 16 --resume ck/ckpt-8
  ;;
damaged_tensor)
  run 0 'done: 8 steps' -- "$train" "${tiny[@]}" --steps 8 --checkpoint-dir ck --checkpoint-every 8
  size=$(stat -c %s ck/ckpt-8/params.safetensors)
  byte=$(od -An -tu1 -j $((size - 1)) -N1 ck/ckpt-8/params.safetensors | tr -d ' ')
  printf "\\x$(printf %02x $((byte ^ 1)))" | dd of=ck/ckpt-8/params.safetensors bs=1 seek=$((size - 1)) conv=notrunc status=none
  refused '--resume ck/ckpt-8: load_checkpoint: "ck/ckpt-8/params.safetensors": its XXH3-64 checksum is [0-9a-f]{16}; its manifest records [0-9a-f]{16} \(the file is damaged or was replaced\)' -- \
    "$train" "${tiny[@]}" --steps 16 --resume ck/ckpt-8
  truncate -s -4 ck/ckpt-8/optimizer.safetensors
  printf "\\x$(printf %02x "$byte")" | dd of=ck/ckpt-8/params.safetensors bs=1 seek=$((size - 1)) conv=notrunc status=none
  refused 'optimizer.safetensors": [0-9]+ bytes; its manifest records [0-9]+ \(the file was cut short or replaced\)' -- \
    "$train" "${tiny[@]}" --steps 16 --checkpoint-dir ck --resume
  ;;
*) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
