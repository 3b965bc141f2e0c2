#!/usr/bin/env bash
# The hostile pass over checkpoint folders, manifests, resume, locks and processes that disagree
# (docs/reliability.md, "Hostile pass (checkpoints, resume, processes)"): each case is run and
# printed as a table row "| case | exit code | first line of what it said |". Not part of the test
# suite (the cases that were defects are tests); rerun it after changes in that area.
#
#   scripts/hostile_checkpoints.sh BUILD_DIR [WORKDIR]
set -u
build=$(cd "$1" && pwd)
train=$build/tools/datarax-train
work=${2:-$(mktemp -d)}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mpi=(mpiexec --oversubscribe --allow-run-as-root)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$root/tests/tools/tiny_data.sh"
tiny_data data 480 100
t=(--data-dir data --devices 1 --hidden 16 --batch-size 60 --schedule constant --log-every 1 --epochs 1000)
n=0
# row NAME command...: runs it (60 s at most) and prints the row.
row() {
  local name=$1
  shift
  timeout 60 "$@" >out.txt 2>&1
  local rc=$?
  local said
  said=$(grep -E 'datarax-train: |^done: |^resume: |^stopped' out.txt | grep -v ' | MLP ' | tail -1 | cut -c1-230 | sed 's/|/\\|/g')
  n=$((n + 1))
  echo "| $n. $name | $rc | ${said:-(nothing)} |"
}
fresh() { rm -rf "$1"; "$train" "${t[@]}" --steps "${2:-4}" --checkpoint-dir "$1" --checkpoint-every "${3:-2}" --keep 10 >/dev/null 2>&1; }

fresh ck
touch afile
row "--checkpoint-dir is a regular file" "$train" "${t[@]}" --steps 2 --checkpoint-dir afile
ln -sf afile flink
row "--checkpoint-dir is a symbolic link to a file" "$train" "${t[@]}" --steps 2 --checkpoint-dir flink
ln -sf nowhere dangling
row "--checkpoint-dir is a dangling symbolic link" "$train" "${t[@]}" --steps 2 --checkpoint-dir dangling
mkdir -p l1 && rm -f l1/datarax.lock && ln -s /etc/hostname l1/datarax.lock
row "datarax.lock planted as a symbolic link to /etc/hostname" "$train" "${t[@]}" --steps 2 --checkpoint-dir l1
echo "  /etc/hostname after: $(head -c 40 /etc/hostname)" >&2
mkdir -p l2/datarax.lock
row "datarax.lock is a folder" "$train" "${t[@]}" --steps 2 --checkpoint-dir l2
mkdir -p l3 && mkfifo l3/datarax-run.json 2>/dev/null
row "datarax-run.json is a FIFO" "$train" "${t[@]}" --steps 2 --checkpoint-dir l3
fresh f1
rm f1/ckpt-4/manifest.json && mkfifo f1/ckpt-4/manifest.json
row "the latest checkpoint's manifest.json is a FIFO (--resume from the folder)" "$train" "${t[@]}" --steps 6 --checkpoint-dir f1 --resume
row "... and named explicitly (--resume f1/ckpt-4)" "$train" "${t[@]}" --steps 6 --resume f1/ckpt-4
fresh f2
rm f2/ckpt-4/params.safetensors && mkfifo f2/ckpt-4/params.safetensors
row "params.safetensors is a FIFO" "$train" "${t[@]}" --steps 6 --checkpoint-dir f2 --resume
fresh f3
cp f3/ckpt-2/params.safetensors f3/ckpt-4/params.safetensors
row "params.safetensors of ckpt-2 copied over ckpt-4's (same size)" "$train" "${t[@]}" --steps 6 --checkpoint-dir f3 --resume
fresh f4
rm f4/ckpt-4/params.safetensors && ln -s ../ckpt-2/params.safetensors f4/ckpt-4/params.safetensors
row "params.safetensors a symbolic link to ckpt-2's" "$train" "${t[@]}" --steps 6 --checkpoint-dir f4 --resume
fresh f5
sed -i 's/"bytes": 51264/"bytes": 999999999999/' f5/ckpt-4/manifest.json
row "manifest: a tensor file's \"bytes\" enlarged" "$train" "${t[@]}" --steps 6 --checkpoint-dir f5 --resume
fresh f6
sed -i 's/"name": "params.safetensors"/"name": "..\/..\/etc\/passwd"/' f6/ckpt-4/manifest.json
row "manifest: a file \"name\" of ../../etc/passwd" "$train" "${t[@]}" --steps 6 --checkpoint-dir f6 --resume
fresh f7
sed -i 's/"steps_per_epoch": 8/"steps_per_epoch": 4/; s/"epoch": 1,/"epoch": 1,/' f7/ckpt-4/manifest.json
row "manifest: \"steps_per_epoch\" 4 (consistent counters, another data order)" "$train" "${t[@]}" --steps 6 --checkpoint-dir f7 --resume
fresh f8
sed -i 's/"count": 240.0/"count": 1.0/; s/"correct": [0-9.]*/"correct": 0.0/' f8/ckpt-4/manifest.json
row "manifest: the epoch's count 1 after 4 steps of 60" "$train" "${t[@]}" --steps 6 --checkpoint-dir f8 --resume
fresh f9
sed -i 's/"step_in_epoch": 4/"step_in_epoch": 12/' f9/ckpt-4/manifest.json
row "manifest: \"step_in_epoch\" beyond \"steps_per_epoch\"" "$train" "${t[@]}" --steps 6 --checkpoint-dir f9 --resume
fresh f10
sed -i 's/"format_version": 2/"format_version": 1/' f10/ckpt-4/manifest.json
row "manifest: format_version 1 (a checkpoint without checksums)" "$train" "${t[@]}" --steps 6 --checkpoint-dir f10 --resume
fresh f11
sed -i 's/"step": 4,/"step": 4, "step": 5,/' f11/ckpt-4/manifest.json
row "manifest: \"step\" given twice (4, then 5)" "$train" "${t[@]}" --steps 6 --checkpoint-dir f11 --resume
fresh f12
sed -i 's/"run": "[0-9a-f]*"/"run": "..\/x"/' f12/ckpt-4/manifest.json
row "manifest: \"run\" of ../x" "$train" "${t[@]}" --steps 6 --checkpoint-dir f12 --resume
fresh f13
sed -i 's/"library": "[^"]*",/"library": "9.9", "extra": [1, 2],/' f13/ckpt-4/manifest.json
row "manifest: an unknown field and another library version (accepted)" "$train" "${t[@]}" --steps 6 --checkpoint-dir f13 --resume
fresh f14
row "resume at the last step (--steps 4 from ckpt-4): nothing to do, nothing rewritten" "$train" "${t[@]}" --steps 4 --checkpoint-dir f14 --checkpoint-every 2 --resume
fresh f15
mkdir -p empty15
row "--resume another folder's ckpt-4 into an empty --checkpoint-dir" "$train" "${t[@]}" --steps 6 --checkpoint-dir empty15 --checkpoint-every 2 --resume f15/ckpt-4
fresh f16
fresh g16
row "--resume f16's latest with --checkpoint-dir g16 (another run's folder)" "$train" "${t[@]}" --steps 6 --checkpoint-dir g16 --resume f16/ckpt-4
row "--resume with a different --seed than the checkpoint" "$train" "${t[@]}" --steps 6 --seed 9 --checkpoint-dir g16 --resume
fresh f17
row "--metrics-out f17/ckpt-2/../m.jsonl (a path through a checkpoint)" "$train" "${t[@]}" --steps 2 --metrics-out f17/ckpt-2/../m.jsonl
row "--save f17/datarax.lock" "$train" "${t[@]}" --steps 2 --save f17/datarax.lock
row "--checkpoint-dir f17/ckpt-4 (a checkpoint as a folder)" "$train" "${t[@]}" --steps 2 --checkpoint-dir f17/ckpt-4
row "--checkpoint-dir data (the data folder)" "$train" "${t[@]}" --steps 2 --checkpoint-dir data --checkpoint-every 1
rm -f data/datarax.lock data/datarax-run.json; rm -rf data/ckpt-*
# A live holder that is stopped (SIGSTOP) still holds the lock.
rm -rf s1
"$train" "${t[@]}" --steps 100000000 --checkpoint-dir s1 --checkpoint-every 100 >hold.txt 2>&1 &
holder=$!
for _ in $(seq 1 200); do [[ -e s1/datarax-run.json ]] && break; sleep 0.05; done
kill -STOP $holder
row "a second run while the first is stopped (SIGSTOP)" "$train" "${t[@]}" --steps 2 --checkpoint-dir s1 --resume
kill -CONT $holder; kill -INT $holder; wait $holder
row "... after the first was stopped by SIGINT: resume" "$train" "${t[@]}" --steps 300 --checkpoint-dir s1 --resume
# Two fresh runs started at once into one empty folder: one wins the lock.
rm -rf race
("$train" "${t[@]}" --steps 300 --checkpoint-dir race --checkpoint-every 100 >r1.txt 2>&1; echo "rc $?" >>r1.txt) &
("$train" "${t[@]}" --steps 300 --checkpoint-dir race --checkpoint-every 100 >r2.txt 2>&1; echo "rc $?" >>r2.txt) &
wait
row "two fresh runs started together into one empty folder (rc of each, then the folder)" bash -c 'echo "datarax-train: $(tail -1 r1.txt), $(tail -1 r2.txt); $(ls race | tr "\n" " ")"'
# The folder deleted in the middle of a run (between two checkpoints).
rm -rf gone
row "the checkpoint folder removed during the run" bash -c '
  (for _ in $(seq 1 200); do ls gone 2>/dev/null | grep -q ckpt && break; sleep 0.05; done; rm -rf gone) &
  exec "$0" "$@"' "$train" "${t[@]}" --steps 6000 --checkpoint-dir gone --checkpoint-every 3000
# Its lock file removed during the run: taken again at the next checkpoint; a second run is kept out.
rm -rf relock
"$train" "${t[@]}" --steps 100000000 --checkpoint-dir relock --checkpoint-every 20 >relock.txt 2>&1 &
p=$!
for _ in $(seq 1 200); do ls relock 2>/dev/null | grep -q ckpt && break; sleep 0.05; done
rm -f relock/datarax.lock; sleep 0.3
row "datarax.lock removed during a run, then a second run with --resume" "$train" "${t[@]}" --steps 2 --checkpoint-dir relock --resume
kill -INT $p; wait $p
# A full disk while a checkpoint is written (the file-size limit).
fresh full
row "a full disk at a checkpoint (ulimit -f 600: the second checkpoint does not fit)" bash -c 'ulimit -f 600; exec "$0" "$@" >/dev/null' "$train" --data-dir data --devices 1 --hidden 128 --batch-size 60 --steps 8 --checkpoint-dir full2 --checkpoint-every 2
row "... then --resume: nothing was committed (the run starts from step 0), no temporary left" bash -c '"$0" "$@" | grep -E "^resume:"; ls -A full2 | grep tmp; exit 0' "$train" --data-dir data --devices 1 --hidden 128 --batch-size 60 --steps 8 --checkpoint-dir full2 --checkpoint-every 2 --resume
# Read-only folder (as root, permissions bind nobody: run as nobody where setpriv exists).
fresh ro && chmod 555 ro
row "a read-only checkpoint folder, as root" "$train" "${t[@]}" --steps 6 --checkpoint-dir ro --checkpoint-every 2 --resume
if command -v setpriv >/dev/null; then
  fresh ro2 && chmod -R a+rX . && chmod 555 ro2
  row "a read-only checkpoint folder, as nobody" setpriv --reuid=nobody --regid=nogroup --clear-groups "$train" "${t[@]}" --steps 6 --checkpoint-dir ro2 --checkpoint-every 2 --resume
fi
# Processes that disagree on the launcher.
cat >onrank1.sh <<'X'
# EXTRA: flags that process 1 alone is given
if [ "${OMPI_COMM_WORLD_RANK:-$PMI_RANK}" = 1 ]; then eval "set -- \"\$@\" $EXTRA"; fi
exec "$@"
X
row "mpirun: --keep 5 on process 1 only" env EXTRA="--keep 5" "${mpi[@]}" -n 2 bash onrank1.sh "$train" "${t[@]}" --steps 2 --checkpoint-dir m0
row "mpirun: --checkpoint-every 3 on process 1 only" env EXTRA="--checkpoint-every 3" "${mpi[@]}" -n 2 bash onrank1.sh "$train" "${t[@]}" --steps 2 --checkpoint-dir m1
row "mpirun: --save on process 1 only" env EXTRA="--save p1.st" "${mpi[@]}" -n 2 bash onrank1.sh "$train" "${t[@]}" --steps 2
row "mpirun: --no-shuffle on process 1 only" env EXTRA="--no-shuffle" "${mpi[@]}" -n 2 bash onrank1.sh "$train" "${t[@]}" --steps 2
fresh m2
row "mpirun: --resume of the same checkpoint, damaged (a flipped byte) — every process refuses" bash -c "printf 'x' | dd of=m2/ckpt-4/params.safetensors bs=1 seek=300 conv=notrunc status=none; ${mpi[*]} -n 2 $train ${t[*]} --steps 6 --checkpoint-dir m2 --resume"
rm -rf m3
"${mpi[@]}" -n 2 "$train" "${t[@]}" --steps 100000000 --checkpoint-dir m3 --checkpoint-every 100 >m3.txt 2>&1 &
p=$!
for _ in $(seq 1 300); do [[ -e m3/datarax-run.json ]] && break; sleep 0.05; done
row "mpirun: a second job on a folder a job holds" "${mpi[@]}" -n 2 "$train" "${t[@]}" --steps 2 --checkpoint-dir m3 --resume
kill -INT $p; wait $p
row "mpirun: kill -9 of process 1 mid-run; then a resume of the folder" bash -c "
  ${mpi[*]} -n 2 $train ${t[*]} --steps 100000000 --checkpoint-dir m4 --checkpoint-every 50 >m4.txt 2>&1 & lp=\$!
  for _ in \$(seq 1 300); do ls m4 2>/dev/null | grep -q ckpt && break; sleep 0.05; done
  for q in \$(pgrep -f -- '$train'); do tr '\0' '\n' </proc/\$q/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && kill -9 \$q; done
  wait \$lp; $train ${t[*]} --steps 300 --checkpoint-dir m4 --resume"
