#!/usr/bin/env bash
# datarax-train's log reaches a file or a pipe line by line (tools/train_output.cc flushes each): a
# run killed (SIGKILL, as a launcher kills the other processes when one dies) keeps the lines it
# printed. Were stdout left block-buffered, the header and the first step's line (under 4 KiB)
# would die in the process's buffer.
#
# usage: log_lines.sh TRAIN WORKDIR
set -u
train=$1 work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# shellcheck source=tests/tools/tiny_data.sh
source "$here/tiny_data.sh"
tiny_data data 512 100
fail() { echo "FAIL: $*"; exit 1; }
# Step 1 is logged, then nothing for a million steps: only a line-buffered log shows it in time.
"$train" --data-dir data --epochs 1000000 --devices 1 --hidden 16 --log-every 1000000 >run.txt 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -q 'step 1/' run.txt && break
  kill -0 $pid 2>/dev/null || { cat run.txt; fail "datarax-train ended early"; }
  sleep 0.05
done
kill -9 $pid
wait $pid 2>/dev/null
grep -q '^datarax-train: 1 device' run.txt || { cat run.txt; fail "the header line is missing after SIGKILL"; }
grep -q 'step 1/' run.txt || { cat run.txt; fail "the first step's line did not reach the file within 30 s"; }
echo "the header and step 1's line reached the file before the SIGKILL"
