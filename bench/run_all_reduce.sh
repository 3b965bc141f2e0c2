#!/usr/bin/env bash
# Runs the threads backend's all-reduce benchmark (all_reduce) and MPI's own in-place
# MPI_Allreduce (mpi_all_reduce, under mpirun) for 2, 4 and 8 devices / processes, prints both
# full tables, then one comparison table per n. Builds nothing: build the targets first.
#
#   cmake --build build --target bench_all_reduce bench_mpi_all_reduce
#   bench/run_all_reduce.sh [--quick] [--devices N] [--processes P] [BUILD_DIR]   # BUILD_DIR: build/
#
# --quick: a smoke run (4 KiB .. 1 MiB, 51 calls per size, 2 warm-up calls), seconds instead of
# about two minutes. --devices N: only n = N (2, 4 or 8 by default), e.g. to re-run one table that
# a busy machine spoiled. Without mpi_all_reduce (MPI not found at configure time) or mpirun, the
# MPI columns read "-".
# --processes P: the multi-process mode. datarax runs under mpirun -np P with N devices per process
# (N = 1 and 2 by default, or --devices N), so every all-reduce crosses processes (MPI backend), and
# is compared with MPI_Allreduce over P * N ranks: the same number of devices. With N = 1, the
# datarax run also prints its own same-launch comparison with MPI_Allreduce (the table to trust
# on a machine whose bandwidth drifts between runs; see bench/all_reduce.cc).
set -euo pipefail

usage="usage: $0 [--quick] [--devices N] [--processes P] [BUILD_DIR]"
quick=0
build=build
counts=()
processes=0
while (( $# )); do
  case "$1" in
    --quick) quick=1 ;;
    --devices)
      if [[ $# -lt 2 || ! $2 =~ ^[1-8]$ ]]; then echo "--devices needs a count 1..8; $usage" >&2; exit 2; fi
      counts=("$2"); shift ;;
    --processes)
      if [[ $# -lt 2 || ! $2 =~ ^[2-8]$ ]]; then echo "--processes needs a count 2..8; $usage" >&2; exit 2; fi
      processes=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "unknown option $1; $usage" >&2; exit 2 ;;
    *) build=$1 ;;
  esac
  shift
done

if (( ${#counts[@]} == 0 )); then
  if (( processes )); then counts=(1 2); else counts=(2 4 8); fi
fi
bench_dir=$build/bench
if [[ ! -x $bench_dir/all_reduce ]]; then
  echo "$bench_dir/all_reduce not found; build it first:" >&2
  echo "  cmake --build $build --target bench_all_reduce bench_mpi_all_reduce" >&2
  exit 1
fi
flags=()
if (( quick )); then flags=(--max-mib 1 --reps 51 --warmup 2); fi

mpi=()
if [[ -x $bench_dir/mpi_all_reduce ]] && command -v mpirun > /dev/null; then
  mpi=(mpirun --oversubscribe)
  if [[ $(id -u) == 0 ]]; then mpi+=(--allow-run-as-root); fi
else
  echo "# mpi_all_reduce or mpirun missing: MPI columns left empty" >&2
  if (( processes )); then echo "--processes needs mpirun and mpi_all_reduce" >&2; exit 1; fi
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average$(uptime | sed 's/.*load average//')"
for n in "${counts[@]}"; do
  ranks=$n
  if (( processes )); then
    ranks=$((processes * n))
    echo "# \$ ${mpi[*]} -np $processes $bench_dir/all_reduce --devices $n ${flags[*]}"
    "${mpi[@]}" -np "$processes" "$bench_dir/all_reduce" --devices "$n" "${flags[@]}" | tee "$out/datarax_$n"
  else
    echo "# \$ $bench_dir/all_reduce --devices $n ${flags[*]}"
    "$bench_dir/all_reduce" --devices "$n" "${flags[@]}" | tee "$out/datarax_$n"
  fi
  if (( ${#mpi[@]} )); then
    echo "# \$ ${mpi[*]} -np $ranks $bench_dir/mpi_all_reduce ${flags[*]}"
    "${mpi[@]}" -np "$ranks" "$bench_dir/mpi_all_reduce" "${flags[@]}" | tee "$out/mpi_$n"
  else
    : > "$out/mpi_$n"
  fi
done
echo "# load average after the runs$(uptime | sed 's/.*load average//')"

# Table rows start with the byte count; columns are found by their names in the header line.
for n in "${counts[@]}"; do
  echo
  if (( processes )); then
    echo "## all-reduce, $processes processes x $n devices: datarax (MPI backend) vs MPI_Allreduce (in place) over $((processes * n)) ranks, median us per call"
  else
    echo "## all-reduce, n=$n: datarax (threads) vs MPI_Allreduce (in place), median us per call"
  fi
  awk '
    { file = FILENAME == ARGV[1] ? 1 : 2 }  # an empty MPI file has no first line to count
    /^## same launch/ { done[file] = 1 }    # the datarax table ends where its same-launch one starts
    done[file] { next }
    $1 == "bytes" { for (i = 1; i <= NF; i++) col[file, $i] = i; next }
    $1 !~ /^[0-9]+$/ { next }
    file == 1 { mpi[$1] = $col[1, "median_us"]; next }
    {
      t = $col[2, "median_us"]
      m = ($1 in mpi) ? sprintf("%12.2f", mpi[$1]) : sprintf("%12s", "-")
      s = ($1 in mpi) ? sprintf("%10.2fx", mpi[$1] / t) : sprintf("%11s", "-")
      printf "%8s | %12.2f | %s | %s | %8s %8s\n", $2, t, m, s, $col[2, "ratio"], $col[2, "ratio_wa"]
    }
    BEGIN { printf "%8s | %12s | %12s | %11s | %8s %8s\n", "size", "datarax_us", "mpi_us", "mpi/datarax", "ratio", "ratio_wa" }
  ' "$out/mpi_$n" "$out/datarax_$n"
done
