#!/usr/bin/env bash
# Processes that agree before the first step (issue 21, item 6): under the launcher, two processes
# of datarax-train where process 1 alone is given something else must both exit 2 before any step,
# naming the flag and the processes (was: trained apart to the end with exit 0, or waited for the
# 300 s collective deadline blaming the wrong process). And a stop sent to the launcher.
#   init        --init FILE on process 1 only
#   data        data of the same size, other contents (one label changed), on process 1
#   folder      --checkpoint-dir on process 1 only, and another folder on each
#   resume      --resume on process 1 only, and another checkpoint on each
#   launcher_signal  SIGTERM to the launcher: every process stops after the same step, one
#               checkpoint of it is written and resumes; the launcher's exit code is printed
#               (Open MPI's mpirun exits 1 whatever its processes' codes: docs/reliability.md).
#               Open MPI sends SIGTERM odls_base_sigkill_timeout s after a SIGCONT and SIGKILL as
#               long after it (4 s here, for the stop's step and checkpoint), forwarding no output
#               meanwhile: the checkpoint folder is the witness.
#
# usage: agree_mpi.sh CASE WORKDIR MPIEXEC [FLAGS...] -- TRAIN
set -u
case_name=$1 work=$2
shift 2
launcher=()
while [[ $1 != -- ]]; do launcher+=("$1"); shift; done
shift
train=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# shellcheck source=tests/tools/tiny_data.sh
source "$here/../tools/tiny_data.sh"
tiny_data data 480 100
fail() { echo "FAIL: $*"; exit 1; }
tiny=(--devices 1 --hidden 16 --batch-size 60 --schedule constant --log-every 1 --epochs 1000000)

# differs RANK0_FLAGS RANK1_FLAGS PATTERN: process 0 runs with the common flags and RANK0_FLAGS,
# process 1 with RANK1_FLAGS; the job must exit 2 with PATTERN from every process, before a step.
differs() {
  local r0=$1 r1=$2 pattern=$3
  [[ $r0$r1 == *--data-dir* ]] || { r0="$r0 --data-dir data"; r1="$r1 --data-dir data"; }
  timeout 60 "${launcher[@]}" -n 2 bash -c \
    'if [ "${OMPI_COMM_WORLD_RANK:-$PMI_RANK}" = 1 ]; then extra=$2; else extra=$1; fi; shift 2; eval "set -- \"\$@\" $extra"; exec "$@"' \
    _ "$r0" "$r1" "$train" "${tiny[@]}" --steps 4 >run.txt 2>&1
  local rc=$?
  [[ $rc == 2 ]] || { cat run.txt; fail "exit $rc, expected 2 (124: it waited for a deadline)"; }
  for p in 0 1; do
    grep -qE -- "datarax-train: process $p: $pattern" run.txt || { cat run.txt; fail "process $p did not say: $pattern"; }
  done
  grep -q 'loss' run.txt && { cat run.txt; fail "training started"; }
  return 0
}

case $case_name in
init)
  "$train" "${tiny[@]}" --data-dir data --steps 2 --save init.safetensors >save.txt 2>&1 || { cat save.txt; fail "making the --init file"; }
  differs "" "--init init.safetensors" \
    "--init [^:]+: differs between processes: process 0 has \(none\); process 1 has [0-9]+ bytes, xxh3 [0-9a-f]{16};"
  ;;
data)
  tiny_data data2 480 100 flip
  differs "--data-dir data" "--data-dir data2" \
    "--data-dir train 480 examples [^:]+: differs between processes: process 0 has train 480 examples of 784 features, 10 classes, images crc32 [0-9a-f]+, labels crc32 [0-9a-f]+; test .*; process 1 has train 480 examples"
  # The same contents under another path are the same data.
  cp -r data data3
  "${launcher[@]}" -n 2 bash -c 'if [ "${OMPI_COMM_WORLD_RANK:-$PMI_RANK}" = 1 ]; then d=data3; else d=data; fi; exec "$0" "$@" --data-dir $d' \
    "$train" "${tiny[@]}" --steps 2 >run.txt 2>&1 || { cat run.txt; fail "the same data under another path was refused"; }
  ;;
folder)
  differs "" "--checkpoint-dir ck" "--checkpoint-dir [^:]+: differs between processes: process 0 has \(none\); process 1 has /.*/ck;"
  [[ ! -e ck ]] || fail "process 1 created its checkpoint folder"
  differs "--checkpoint-dir a" "--checkpoint-dir b" "--checkpoint-dir [^:]+: differs between processes: process 0 has /.*/a; process 1 has /.*/b;"
  ;;
resume)
  "$train" "${tiny[@]}" --data-dir data --steps 4 --checkpoint-dir ck --checkpoint-every 2 --keep 5 >first.txt 2>&1 || { cat first.txt; fail "the first run"; }
  differs "" "--resume ck/ckpt-2" "--resume [^:]*: differs between processes: process 0 has \(not given\); process 1 has ckpt-2 \(manifest [0-9]+ bytes, xxh3"
  differs "--resume ck/ckpt-2" "--resume ck/ckpt-4" "--resume ckpt-[24] [^:]+: differs between processes: process 0 has ckpt-2 .*; process 1 has ckpt-4"
  ;;
launcher_signal)
  # Open MPI's abort: SIGCONT, odls_base_sigkill_timeout s, SIGTERM, as long again, SIGKILL; no
  # output is forwarded meanwhile, so the witness is the checkpoint folder, not the console. 4 s
  # leaves the stop its step and its checkpoint.
  OMPI_MCA_odls_base_sigkill_timeout=4 timeout 60 "${launcher[@]}" -n 2 "$train" "${tiny[@]}" --data-dir data --steps 1000000 \
    --checkpoint-dir ck >run.txt 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do grep -q 'loss' run.txt && break; sleep 0.05; done
  kill -TERM $pid
  wait $pid
  rc=$?
  [[ $rc == 143 || $rc == 1 ]] || { cat run.txt; fail "launcher exit $rc: expected 143, or 1 from Open MPI's mpirun"; }
  ckpts=$(find ck -maxdepth 1 -name 'ckpt-*')
  [[ $(echo "$ckpts" | grep -c .) == 1 ]] || { cat run.txt; fail "expected the stop's one checkpoint: $(ls ck)"; }
  stopped=${ckpts##*ckpt-}
  "$train" "${tiny[@]}" --data-dir data --steps $((stopped + 1)) --checkpoint-dir ck --resume >resume.txt 2>&1 || { cat resume.txt; fail "resuming"; }
  grep -q "resume: ck/ckpt-$stopped (step $stopped" resume.txt || { cat resume.txt; fail "did not resume ckpt-$stopped"; }
  echo "SIGTERM to the launcher: every process stopped after step $stopped, ckpt-$stopped resumed; launcher exit $rc"
  ;;
*) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
