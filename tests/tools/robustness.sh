#!/usr/bin/env bash
# datarax-train and datarax-info as a careless or hostile user drives them: paths that are devices,
# FIFOs or hold quotes, a full disk, the same path twice, two runs at once, bad numbers, signals.
# Each case was a defect found by a robustness pass (issue "Training that survives", items 1-10).
#
# usage: robustness.sh CASE TRAIN INFO WORKDIR
set -u
case_name=$1 train=$2 info=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
data=/usr/share/datasets/fashion-mnist
small=(--devices 2 --steps 3 --hidden 32 --log-every 1)

fail() { echo "FAIL: $*"; exit 1; }
# run EXPECTED_RC PATTERN -- command...: runs it, checks its exit code and that its output matches.
run() {
  local want=$1 pattern=$2
  shift 3
  "$@" >out.txt 2>&1
  local rc=$?
  [[ $rc == "$want" ]] || { cat out.txt; fail "exit $rc, expected $want: $*"; }
  grep -qE -- "$pattern" out.txt || { cat out.txt; fail "no \"$pattern\" in the output of: $*"; }
}
no_temporaries() {  # no temporary of ours is left in folder $1
  local left
  left=$(find "$1" -name '.*tmp-*')
  [[ -z $left ]] || fail "temporaries left: $left"
}

case $case_name in

# 1. Outputs that are not regular files are refused, and stay what they were.
not_regular_files)
  run 2 '--save: "/dev/null": exists and is a character device, not a regular file' -- "$train" "${small[@]}" --save /dev/null
  [[ -c /dev/null ]] || fail "/dev/null is no longer a character device"
  mkfifo fifo
  run 2 '--metrics-out: ".*fifo": exists and is a FIFO' -- "$train" "${small[@]}" --metrics-out fifo
  [[ -p fifo ]] || fail "the FIFO is no longer a FIFO"
  mkdir folder
  run 2 '--plot: ".*folder": exists and is a folder' -- "$train" "${small[@]}" --plot folder
  ln -s /etc/passwd link
  run 2 'exists and is a symbolic link' -- "$train" "${small[@]}" --save link
  [[ -L link ]] || fail "the link is no longer a link"
  ;;

# 2. Names are never parsed as commands: a --plot path that is a gnuplot injection, a data folder
#    with a quote in its name.
quotes_in_names)
  evil="x.png'; system('touch INJECTED'); print '"
  run 0 "plot: " -- "$train" "${small[@]}" --plot "$evil"
  [[ ! -e INJECTED ]] || fail "the --plot name ran a command"
  [[ -s $evil ]] || fail "no plot was written under the name given"
  head -c 8 "$evil" | od -An -c | grep -q 'P   N   G' || fail "the plot is not a PNG"
  mkdir "John's data"
  for f in "$data"/*; do ln -s "$f" "John's data/"; done
  run 0 "plot: " -- "$train" "${small[@]}" --data-dir "John's data" --plot "john's plot.png"
  [[ -s "john's plot.png" ]] || fail "no plot for the data folder with a quote"
  no_temporaries .
  ;;

# 3. Mesh sizes whose product overflows are refused, not crashed on.
mesh_overflow)
  run 2 'Not enough devices. Mesh requires more than 1099511627776 devices, but only 8 are available' -- \
    "$info" --devices 8 --mesh a=2097152,b=2097152,c=16777216
  run 2 'Not enough devices. Mesh requires more than 1099511627776 devices' -- \
    "$info" --devices 8 --mesh a=2147483647,b=2147483647,c=2147483647
  run 2 'out of range|not a size' -- "$info" --devices 8 --mesh a=2147483648
  ;;

# 4. A full disk (the file-size limit, which binds root too): the run fails, the old file stays.
full_disk)
  echo '{"old": true}' > m.jsonl
  # (stdout to /dev/null, which no size limit binds: the progress lines would hit the limit first)
  run 1 '--metrics-out: ".*m.jsonl": write failed after .*File too large' -- \
    bash -c 'ulimit -f 2; exec "$0" "$@" >/dev/null' "$train" --devices 2 --steps 200 --hidden 32 --log-every 1 --metrics-out m.jsonl
  [[ $(cat m.jsonl) == '{"old": true}' ]] || fail "the old metrics file changed"
  printf 'old plot' > p.png
  run 1 '--plot: ".*p.png": write failed after .*File too large' -- \
    bash -c 'ulimit -f 8; exec "$0" "$@" >/dev/null' "$train" "${small[@]}" --plot p.png
  [[ $(cat p.png) == 'old plot' ]] || fail "the old plot changed"
  no_temporaries .
  ;;

# 5. One path named for two outputs.
same_path_twice)
  run 2 '--plot .*same: the same path as --save' -- "$train" "${small[@]}" --save same --plot same
  run 2 '--metrics-out .*same: the same path as --save' -- "$train" "${small[@]}" --save same --metrics-out ./same
  [[ ! -e same ]] || fail "a refused run wrote the file"
  ;;

# 6. Two runs writing one metrics file at once get whole files, one or the other's; temporaries of
#    a process that died are removed by the next run, and only those.
two_runs_one_file)
  "$train" --devices 1 --steps 40 --hidden 32 --log-every 1 --metrics-out m.jsonl >a.txt 2>&1 &
  a=$!
  "$train" --devices 1 --steps 40 --hidden 32 --log-every 1 --seed 9 --metrics-out m.jsonl >b.txt 2>&1 &
  b=$!
  wait $a || fail "run a: $(cat a.txt)"
  wait $b || fail "run b: $(cat b.txt)"
  [[ $(wc -l <m.jsonl) == 40 ]] || fail "m.jsonl has $(wc -l <m.jsonl) lines, expected one run's 40"
  grep -vqE '^\{"step": [0-9]+, "loss": [0-9.e+-]+, "accuracy": [0-9.e+-]+, "samples_per_s": [0-9.e+-]+\}$' m.jsonl &&
    fail "m.jsonl has a line that is not one whole record"
  # A temporary whose writer is gone (nobody holds its lock; any host) is removed by the next run;
  # one whose writer lives (this shell holds its lock) is not.
  stale=".m.jsonl.datarax-tmp-0000000000000001"
  head -c 1000000 /dev/zero > "$stale"
  keep=".m.jsonl.datarax-tmp-0000000000000002"
  exec 9>>"$keep"
  flock -n 9 || fail "cannot lock $keep"
  run 0 "done: 3 steps" -- "$train" "${small[@]}" --metrics-out m.jsonl 9>&-
  exec 9>&-
  [[ ! -e $stale ]] || fail "the stale temporary of a writer that is gone is still there"
  [[ -e $keep ]] || fail "a temporary that is not stale was removed"
  ;;

# 7. Outputs are checked before the first step.
outputs_checked_first)
  for args in "--save nowhere/p.safetensors" "--metrics-out ." "--plot nowhere/p.png" "--checkpoint-dir /proc/x"; do
    # shellcheck disable=SC2086
    run 2 'nowhere|exists and is a folder|checkpoint folder' -- "$train" --devices 2 --steps 1000 $args
    grep -q 'loss' out.txt && fail "training started before $args was refused"
  done
  ;;

# 8. Non-finite settings and a loss that becomes non-finite.
non_finite)
  run 2 '--lr: "inf" is not a number; valid: a decimal number above 0' -- "$train" "${small[@]}" --lr inf
  run 2 '--lr: 1e400 is out of range' -- "$train" "${small[@]}" --lr 1e400
  run 2 '--weight-decay: "inf" is not a number' -- "$train" "${small[@]}" --optimizer adamw --weight-decay inf
  run 2 '--clip-norm: "nan" is not a number' -- "$train" "${small[@]}" --clip-norm nan
  mkdir ck
  run 1 'train: the loss is -?(nan|inf) at step [0-9]+ .*saving nothing over the last checkpoint' -- \
    "$train" --devices 2 --steps 100 --optimizer sgd --lr 1000000 --schedule constant \
    --metrics-out m.jsonl --checkpoint-dir ck --checkpoint-every 1
  bad=$(grep -oE 'at step [0-9]+' out.txt | grep -oE '[0-9]+')
  for c in ck/ckpt-*; do
    [[ ${c#ck/ckpt-} -lt $bad ]] || fail "$c was written at or after the non-finite step $bad"
  done
  if [[ -e m.jsonl ]] && grep -qiE '\bnan\b|\binf' m.jsonl; then fail "a metrics file holds a bare non-finite number"; fi
  no_temporaries .
  ;;

# 10. Smaller holes.
small_holes)
  run 2 '--hidden: empty; give layer widths' -- "$train" --hidden ''
  run 2 '--batch-size: 99999999999999999999999 is out of range' -- "$train" --batch-size 99999999999999999999999
  run 2 '--hidden 200000,200000: .* parameters need about .* GiB .* available' -- "$train" --devices 2 --hidden 200000,200000
  run 2 '--seed: "-1" is not a whole number' -- "$train" --seed -1
  run 2 '--devices: "" is not a device count' -- "$train" --devices ''
  run 2 '--save: the path is empty' -- "$train" --save ''
  run 2 '--metrics-out: the path is empty' -- "$train" --metrics-out ''
  run 2 'DATARAX_COLLECTIVE_TIMEOUT_S: "abc" is not a timeout; valid: seconds above 0 and up to 1e7' -- \
    env DATARAX_COLLECTIVE_TIMEOUT_S=abc "$train"
  grep -q 'fashion-mnist' out.txt && fail "the data loaded before the bad DATARAX_COLLECTIVE_TIMEOUT_S was refused"
  ;;

# Stops: SIGINT during training and SIGTERM during checkpointing (a checkpoint every step) exit
# 130 / 143 after writing a checkpoint that resumes, with nothing partial left.
signals)
  for sig in INT TERM; do
    rm -rf ck && mkdir ck
    "$train" --devices 2 --steps 100000 --schedule constant --checkpoint-dir ck --checkpoint-every 1 >run.txt 2>&1 &
    pid=$!
    for _ in $(seq 1 400); do grep -q 'loss' run.txt && break; sleep 0.05; done
    sleep 0.5
    kill -$sig $pid
    wait $pid
    rc=$?
    want=$([[ $sig == INT ]] && echo 130 || echo 143)
    [[ $rc == "$want" ]] || { cat run.txt; fail "SIG$sig: exit $rc, expected $want"; }
    grep -q 'stopped at step .*; checkpoint .*ckpt-.*; continue with the same command and --resume' run.txt ||
      { cat run.txt; fail "SIG$sig: no resume hint"; }
    no_temporaries ck
    # It resumes, and trains on: two steps past the stop's checkpoint (the rest of epoch 1, as run
    # here before, is some 200 steps of the default model that check nothing more).
    stopped=$(grep -oE 'stopped at step [0-9]+' run.txt | grep -oE '[0-9]+')
    run 0 "resume: .*ckpt-$stopped \\(step $stopped" -- \
      "$train" --devices 1 --steps $((stopped + 2)) --schedule constant --checkpoint-dir ck --resume
    grep -q 'done: 2 steps' out.txt || { cat out.txt; fail "SIG$sig: the resumed run did not train on"; }
  done
  # Another optimizer setting is refused, naming it; a second signal ends the run at once.
  run 2 '--lr 0.002: the checkpoint was trained with lr 0.001; resuming needs the same lr' -- \
    "$train" --devices 2 --steps 100000 --schedule constant --checkpoint-dir ck --resume --lr 0.002
  "$train" --devices 2 --steps 100000 --schedule constant --checkpoint-dir ck --checkpoint-every 1 --resume >run.txt 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do grep -q 'loss' run.txt && break; sleep 0.05; done
  kill -INT $pid; kill -INT $pid
  wait $pid
  rc=$?
  [[ $rc == 130 ]] || { cat run.txt; fail "two SIGINTs: exit $rc, expected 130"; }
  latest=$(find ck -maxdepth 1 -name 'ckpt-*' | sed 's/.*ckpt-//' | sort -n | tail -1)
  [[ -n $latest ]] || { cat run.txt; fail "two SIGINTs: no checkpoint in ck"; }
  run 0 "resume: .*ckpt-$latest \\(step $latest" -- \
    "$train" --devices 2 --steps $((latest + 2)) --schedule constant --checkpoint-dir ck --resume
  grep -q 'done: 2 steps' out.txt || { cat out.txt; fail "two SIGINTs: the resumed run did not train on"; }
  no_temporaries ck
  ;;

*) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
