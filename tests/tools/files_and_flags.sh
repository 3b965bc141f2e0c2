#!/usr/bin/env bash
# datarax-train and datarax-info against hostile file names, inputs and flags (issue 21, "Nothing
# run, nothing lost", items 1, 2, 5, 7, 8 and 9): a plot path that gnuplot would run, a stop that
# would replace the trained model, inputs that would block or be overwritten, runs too long to
# reserve memory for, temporaries of writers that are gone, lax numbers, options that do nothing,
# control characters. Every case failed on the tools before the fix (commit 93074f7).
#
# usage: files_and_flags.sh CASE TRAIN INFO WORKDIR
set -u
case_name=$1 train=$2 info=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# A tiny MNIST-format data set (512 training and 128 test examples of noise, labels i mod 10):
# loading Fashion-MNIST took most of each run's time, and no case here depends on the data.
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
make_data() {  # FOLDER
  mkdir -p "$1"
  local split n labels
  for split in train:512 t10k:128; do
    n=${split#*:}
    # shellcheck disable=SC2059
    { printf '\x00\x00\x08\x03'; printf "$(be32 "$n")"; printf '\x00\x00\x00\x1c\x00\x00\x00\x1c'
      head -c $((n * 784)) /dev/urandom; } >"$1/${split%:*}-images-idx3-ubyte"
    labels=$(for ((i = 0; i < n; ++i)); do printf '\\x%02x' $((i % 10)); done)
    # shellcheck disable=SC2059
    { printf '\x00\x00\x08\x01'; printf "$(be32 "$n")"; printf "$labels"; } >"$1/${split%:*}-labels-idx1-ubyte"
  done
}
make_data data
base=(--devices 2 --steps 3 --hidden 16 --batch-size 32 --log-every 1)
small=("${base[@]}" --data-dir data)

fail() { echo "FAIL: $*"; exit 1; }
# run EXPECTED_RC PATTERN -- command...: runs it (at most 60 s), checks its exit code and that its
# output matches.
run() {
  local want=$1 pattern=$2
  shift 3
  timeout 60 "$@" >out.txt 2>&1
  local rc=$?
  [[ $rc == "$want" ]] || { cat out.txt; fail "exit $rc, expected $want: $*"; }
  grep -qE -- "$pattern" out.txt || { cat out.txt; fail "no \"$pattern\" in the output of: $*"; }
}
# start LOG command...: runs it in the background; $pid is its process.
start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  pid=$!
}
# wait_for LOG PATTERN: until the log matches (at most 30 s).
wait_for() {
  for _ in $(seq 1 600); do grep -qE -- "$2" "$1" && return 0; sleep 0.05; done
  cat "$1"
  fail "no \"$2\" in $1 within 30 s"
}
# A stand-in gnuplot (first on PATH) that runs the shell commands $1 (it gets an empty environment).
fake_gnuplot() {
  mkdir -p bin
  printf '#!/bin/sh\n%s\n' "$1" >bin/gnuplot
  chmod +x bin/gnuplot
}

case $case_name in

# 1. No program reads a name: gnuplot gets its script on stdin and writes the PNG to stdout; the
#    output's name never reaches it, nor does a start-up file or the environment; no scratch files.
plot_names)
  mkdir '|touch X #' home
  echo "system('touch FROM_GNUPLOTRC')" >home/.gnuplot
  run 0 'plot: ' -- env HOME="$PWD/home" GNUTERM=dumb "$train" "${small[@]}" --plot '|touch X #/p.png'
  [[ ! -e X && ! -e '|touch X #/X' ]] || fail "the --plot name ran touch"
  [[ ! -e FROM_GNUPLOTRC && ! -e home/FROM_GNUPLOTRC ]] || fail "gnuplot read ~/.gnuplot"
  head -c 8 '|touch X #/p.png' | od -An -c | grep -q 'P   N   G' || fail "no PNG under the name given"
  # kill -9 while gnuplot runs: no scratch folder in TMPDIR, no temporary next to the plot.
  mkdir tmp
  fake_gnuplot "echo \$\$ >$PWD/gnuplot.pid; exec /bin/sleep 30"
  start run.txt env PATH="$PWD/bin:$PATH" TMPDIR="$PWD/tmp" "$train" "${small[@]}" --plot k.png
  for _ in $(seq 1 600); do [[ -s gnuplot.pid ]] && break; sleep 0.05; done
  [[ -s gnuplot.pid ]] || { cat run.txt; fail "the stand-in gnuplot never ran"; }
  kill -9 $pid
  wait $pid 2>/dev/null
  kill "$(cat gnuplot.pid)" 2>/dev/null
  [[ -z $(ls -A tmp) ]] || fail "scratch left in TMPDIR after kill -9: $(ls -A tmp)"
  [[ -z $(find . -maxdepth 1 -name '.*tmp-*') ]] || fail "a temporary left next to the plot"
  ;;

# 2. The model first: --save, then the final checkpoint, then metrics and plot; a stopped run
#    writes its checkpoint and not --save.
model_first)
  echo 'a trained model' >model.st
  start run.txt "$train" --devices 2 --steps 100000 --hidden 16 --batch-size 32 --data-dir data --epochs 1000000 --save model.st \
    --checkpoint-dir ck1
  wait_for run.txt 'loss'
  kill -INT $pid
  wait $pid
  rc=$?
  [[ $rc == 130 ]] || { cat run.txt; fail "SIGINT: exit $rc, expected 130"; }
  [[ $(cat model.st) == 'a trained model' ]] || fail "a stopped run replaced model.st"
  grep -q 'stopped at step .*; checkpoint ck1/ckpt-.*; continue with the same command and --resume; --save model.st not written' run.txt ||
    { cat run.txt; fail "no resume hint, or no word of --save"; }
  # The last step always has a checkpoint; a plot that fails comes after the model, the final
  # checkpoint and the metrics, which are all written, and the run exits 1.
  fake_gnuplot 'exit 3'
  run 1 '--plot p.png: gnuplot failed \(exit status 3\)' -- env PATH="$PWD/bin:$PATH" "$train" "${small[@]}" \
    --save m2.st --checkpoint-dir ck2 --checkpoint-every 2 --metrics-out m.jsonl --plot p.png
  [[ -s m2.st ]] || fail "--save was not written before the plot failed"
  [[ -d ck2/ckpt-2 && -d ck2/ckpt-3 ]] || fail "checkpoints: $(ls ck2); expected ckpt-2 and the final step's ckpt-3"
  [[ $(wc -l <m.jsonl) == 3 ]] || fail "the metrics were not written before the plot failed"
  [[ ! -e p.png ]] || fail "a failed plot left a file"
  ;;

# 5. Inputs never hang and are never overwritten.
inputs)
  mkfifo fifo
  run 2 '--init fifo: load_safetensors: "fifo": is a FIFO, not a regular file' -- "$train" "${small[@]}" --init fifo
  mkdir d
  for f in data/*; do ln -s "$PWD/$f" d/; done
  rm d/t10k-labels-idx1-ubyte && mkfifo d/t10k-labels-idx1-ubyte  # (refused before too)
  run 2 'has neither t10k-labels-idx1-ubyte nor' -- "$train" "${base[@]}" --data-dir d
  before=$(md5sum <data/t10k-labels-idx1-ubyte)
  run 2 '--metrics-out data/t10k-labels-idx1-ubyte: is the data file .*an input of this run' -- \
    "$train" "${small[@]}" --metrics-out data/t10k-labels-idx1-ubyte
  [[ $(md5sum <data/t10k-labels-idx1-ubyte) == "$before" ]] || fail "the data file changed"
  echo 'parameters' >init.st  # refused before it is read
  ln init.st hard.st
  run 2 '--save ./hard.st: is --init init.st, an input' -- "$train" "${small[@]}" --init init.st --save ./hard.st
  run 2 '--plot init.st: is --init init.st, an input' -- "$train" "${small[@]}" --init init.st --plot init.st
  ;;

# 7. No memory proportional to the run's length: the longest valid runs start, and stop by signal.
huge_runs)
  # Both at their maximum: 1073741824 epochs of 1875 steps, and the most steps --steps takes.
  start run.txt "$train" --devices 2 --hidden 16 --batch-size 32 --log-every 1 --data-dir data --epochs 1073741824 \
    --steps 2305843009213693951
  wait_for run.txt 'global 2\)'
  kill -TERM $pid
  wait $pid
  rc=$?
  [[ $rc == 143 ]] || { cat run.txt; fail "exit $rc, expected 143"; }
  grep -q '17179869184 steps' run.txt || { cat run.txt; fail "not the run asked for"; }
  ;;

# 8. Temporaries: a legal long name works; those of writers that are gone (any host) are removed
#    at the next start, a live writer's (it holds the lock) are not.
temporaries)
  long=$(printf 'm%.0s' $(seq 1 250))
  head -c 100000 /dev/zero >.m.jsonl.datarax-tmp-00000000deadbeef    # a restarted pod's: no lock
  mkdir .ckpt-9.datarax-tmp-00000000feedf00d                         # a folder, no lock
  exec 9>>.m.jsonl.datarax-tmp-1111111111111111                     # a live writer's: this
  flock -n 9 || fail "cannot lock"                                     # shell holds its lock
  run 0 "saved: $long" -- "$train" "${small[@]}" --save "$long" --metrics-out m.jsonl 9>&-
  [[ ! -e .m.jsonl.datarax-tmp-00000000deadbeef && ! -e .ckpt-9.datarax-tmp-00000000feedf00d ]] ||
    fail "temporaries of writers that are gone are still there: $(ls -A)"
  [[ -e .m.jsonl.datarax-tmp-1111111111111111 ]] || fail "a live writer's temporary was removed"
  exec 9>&-                                                            # the writer is gone now
  # A start cleans up too, even one refused later (here: no gnuplot on PATH).
  run 2 'gnuplot is not installed' -- env PATH=/nonexistent "$train" "${small[@]}" --metrics-out m.jsonl --plot p.png
  [[ ! -e .m.jsonl.datarax-tmp-1111111111111111 ]] || fail "the temporary outlived its writer's lock"
  ;;

# 9. Strict numbers, options that do nothing refused, control characters escaped.
flags)
  run 2 '--lr: "0x10" is not a number; valid: a decimal number above 0' -- "$train" "${small[@]}" --lr 0x10
  run 2 '--lr: "inf" is not a number' -- "$train" "${small[@]}" --lr inf
  run 2 '--lr: "1e-3x" is not a number' -- "$train" "${small[@]}" --lr 1e-3x
  run 2 '--clip-norm: " 1" is not a number' -- "$train" "${small[@]}" --clip-norm ' 1'
  run 2 '--momentum: "0x0.8p0" is not a number' -- "$train" "${small[@]}" --optimizer sgd --momentum 0x0.8p0
  run 2 'DATARAX_COLLECTIVE_TIMEOUT_S: "0x10" is not a timeout' -- env DATARAX_COLLECTIVE_TIMEOUT_S=0x10 "$train" "${small[@]}"
  run 2 '--weight-decay 0.1: applies to --optimizer adamw only' -- "$train" "${small[@]}" --optimizer adam --weight-decay 0.1
  run 2 '--weight-decay 0.1: applies to --optimizer adamw only' -- "$train" "${small[@]}" --optimizer sgd --weight-decay 0.1
  run 2 '--warmup-steps 5: applies to --schedule warmup_cosine only' -- "$train" "${small[@]}" --schedule constant --warmup-steps 5
  run 0 'done: 3 steps' -- "$train" "${small[@]}" --optimizer adamw --weight-decay 0.1 --lr 1e-3
  esc=$'\e'
  run 2 'the axis name "a\\x1b\]0;pwned\\x07" holds a control character' -- "$info" --devices 2 --mesh $'a\e]0;pwned\a=2'
  grep -q "$esc" out.txt && fail "datarax-info printed a raw escape character"
  run 2 'x1b\[2J' -- "$train" "${small[@]}" --optimizer $'\e[2J'
  grep -q "$esc" out.txt && fail "datarax-train printed a raw escape character"
  run 2 'x1b' -- "$train" "${small[@]}" $'--no-such-flag\e[2J'
  grep -q "$esc" out.txt && fail "a command-line error printed a raw escape character"
  cp -r data $'e\e[2Jd'
  run 0 'e\\x1b\[2Jd/train' -- "$train" "${base[@]}" --data-dir $'e\e[2Jd'
  grep -q "$esc" out.txt && fail "the data folder's name was printed with a raw escape character"
  ;;

stalled_output)
  # A reader that stops reading (mpirun stops forwarding its processes' output once it starts
  # killing a job) must not stall training: SIGTERM still finishes the step, writes the checkpoint
  # and exits 143. The console drops what the pipe does not take within its deadline.
  mkfifo out.fifo
  sleep 100 <out.fifo &  # holds the pipe open and never reads it
  reader=$!
  "$train" --devices 2 --hidden 16 --batch-size 32 --log-every 1 --data-dir data --epochs 1000000 --steps 100000000 \
    --checkpoint-dir ck >out.fifo 2>err.txt &
  pid=$!
  sleep 2  # the pipe's 64 KiB fill within a second at a line per step
  kill -TERM $pid
  for _ in $(seq 1 200); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
  if kill -0 $pid 2>/dev/null; then
    kill -9 $pid $reader
    fail "still running 10 s after SIGTERM with its output not read"
  fi
  wait $pid
  rc=$?
  kill $reader 2>/dev/null
  [[ $rc == 143 ]] || { cat err.txt; fail "exit $rc after SIGTERM, expected 143"; }
  [[ -n $(find ck -maxdepth 1 -name 'ckpt-*') ]] || fail "no checkpoint written at the stop"
  ;;

*) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
