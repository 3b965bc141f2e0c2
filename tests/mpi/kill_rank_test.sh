#!/usr/bin/env bash
# A rank that dies (SIGKILL) or stops answering (SIGSTOP) in the middle of training must not leave
# the others waiting: mpirun has to end within the collective deadline plus a margin, with a
# non-zero exit code and a message that names the culprit (rank/process 1). Repeated REPS times.
#
# usage: kill_rank_test.sh SIGNAL REPS DEADLINE_S WORKDIR MPIEXEC [MPIEXEC_FLAGS...] -- TRAIN
set -u
signal=$1 reps=$2 deadline=$3 work=$4
shift 4
launcher=()
while [[ $1 != -- ]]; do launcher+=("$1"); shift; done
shift
train=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$work"
# A tiny slice of Fashion-MNIST (tests/tools/tiny_data.sh), run for as many epochs as it takes: what
# is under test is a rank lost in the middle of training's collectives, and with the full data set
# each of the REPS starts spent seconds loading 60,000 examples per process (and under load one
# process could finish that more than DEADLINE_S after the other, failing the start's own
# comparison of the processes' data before the signal was sent).
# shellcheck source=tests/tools/tiny_data.sh
source "$here/../tools/tiny_data.sh"
tiny_data "$work/data" 1024 100
limit=$((deadline + 10))  # seconds the launcher may take after the signal

# shellcheck source=tests/mpi/rank_pid.sh
source "$here/rank_pid.sh"

for rep in $(seq 1 "$reps"); do
  out="$work/run$rep.txt"
  DATARAX_COLLECTIVE_TIMEOUT_S=$deadline "${launcher[@]}" -n 2 "$train" --devices 1 --data-dir "$work/data" --epochs 1000000 > "$out" 2>&1 &
  launcher_pid=$!
  # Wait until training is under way (steps reported), then hit rank 1.
  for _ in $(seq 1 600); do
    grep -q 'loss' "$out" && break
    sleep 0.05
  done
  sleep 0.3
  victim=$(rank_pid 1 "$train")
  if [[ -z $victim ]]; then
    echo "run $rep: found no process of rank 1"; kill -9 "$launcher_pid"; cat "$out"; exit 1
  fi
  kill "-$signal" "$victim"
  hit=$(date +%s%N)
  for _ in $(seq 1 $((limit * 20))); do
    kill -0 "$launcher_pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$launcher_pid" 2>/dev/null; then
    echo "run $rep: the launcher still runs ${limit}s after SIG$signal to rank 1 (pid $victim)"
    pkill -9 -f -- "$train"; kill -9 "$launcher_pid"; cat "$out"; exit 1
  fi
  wait "$launcher_pid"
  rc=$?
  took_ms=$(( ($(date +%s%N) - hit) / 1000000 ))
  if (( rc == 0 )); then echo "run $rep: the launcher exited with 0"; cat "$out"; exit 1; fi
  # The culprit by name: ours ("process 1 (cpu:1) did not arrive"), Open MPI's ("process rank 1")
  # or MPICH Hydra's, which names the process by its PID ("PID <pid> RUNNING AT <host>").
  if ! grep -qE "process 1 \(cpu:1\) did not arrive|rank 1 |RANK 1 |rank 1\$|PID $victim RUNNING AT" "$out"; then
    echo "run $rep: no message names rank 1:"; cat "$out"; exit 1
  fi
  echo "run $rep: SIG$signal to rank 1 -> launcher exit $rc after ${took_ms} ms: $(grep -hoE "process 1 \(cpu:1\) did not arrive|.*rank 1 .*|PID $victim RUNNING AT.*" "$out" | head -1)"
done
echo "all $reps runs ended in time and named rank 1"
