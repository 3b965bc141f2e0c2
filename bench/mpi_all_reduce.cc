// mpi_all_reduce: MPI's own in-place f32 sum all-reduce on this machine, the reference that
// all_reduce.cc is compared with (run_all_reduce.sh prints both side by side).
//
//   mpirun -np 2 ./build/bench/mpi_all_reduce [--min-kib 4] [--max-mib 256] [--factor 4]
//                                             [--reps 0] [--warmup 5]
//
// Plain MPI, no datarax: MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM,
// MPI_COMM_WORLD), one process per rank. Same method and table as all_reduce.cc: verified once
// (rank r holds (i % 251) + r at element i; the sum is exactly n * (i % 251) + n(n-1)/2), refilled
// with zeros, warmed up, then per iteration MPI_Barrier, MPI_Wtime, MPI_Allreduce, MPI_Wtime; the
// sample of an iteration is the largest time over the ranks (an MPI_Reduce with MPI_MAX after the
// loop), and the table gives median, p10, p90 over iterations. The memory bound uses a STREAM triad
// run by all ranks at once (each rank 1/n of 3 x 128 MiB of doubles, 3 arrays counted,
// write-allocate not), so its B is what these n processes get together; as in all_reduce.cc it is
// measured up front and again before every row, whose bound uses its own B.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "all_reduce_table.h"
#include "bench_util.h"

namespace {

namespace bench = datarax::bench;

using bench::kKiB;
using bench::kMiB;
constexpr const char* kUsage =
    "mpirun -np N mpi_all_reduce [--min-kib N] [--max-mib N] [--factor N] [--reps N] [--warmup N]";

// STREAM triad a[i] = b[i] + 3 * c[i], every rank on its 1/n of the elements at once. The arrays
// live as long as the object.
class StreamTriad {
 public:
  StreamTriad(int rank, int n);
  // GB/s of the best of `reps` repetitions (3 arrays counted), valid on rank 0. Collective.
  double measure(int reps);

 private:
  static constexpr std::size_t kElementsInAll = 128 * kMiB / sizeof(double);
  int rank_, n_;
  std::size_t elements_;  // this rank's
  std::unique_ptr<double[]> a_, b_, c_;
};

bench::Samples time_all_reduce(int rank, int n, long long bytes, int reps, int warmup);
// The element-wise maximum of every rank's samples, on rank 0 (empty elsewhere).
std::vector<double> max_over_ranks(const std::vector<double>& mine, int rank);
double now_us();  // steady_clock, the same clock in every process of the machine
// Ends the whole job when a verification failed (bench::verify would end only this process).
void fail_if(bool failed, int rank, const std::string& what);

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, n = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  bench::reject_unknown_flags(argc, argv, {"--min-kib", "--max-mib", "--factor", "--reps", "--warmup"},
                              kUsage);
  const long long min_kib = bench::int_flag(argc, argv, "--min-kib", 4, 1, kUsage);
  const long long max_mib = bench::int_flag(argc, argv, "--max-mib", 256, 1, kUsage);
  const long long factor = bench::int_flag(argc, argv, "--factor", 4, 2, kUsage);
  const auto fixed_reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 0, 0, kUsage));
  const auto warmup = static_cast<int>(bench::int_flag(argc, argv, "--warmup", 5, 0, kUsage));
  if (max_mib > 4096) {  // MPI_Allreduce takes an int count
    if (rank == 0) std::fprintf(stderr, "--max-mib must be at most 4096\nusage: %s\n", kUsage);
    MPI_Finalize();
    return 2;
  }

  StreamTriad stream(rank, n);
  const double triad_gbs = stream.measure(15);
  if (rank == 0) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    std::string first_line(version, static_cast<std::size_t>(length));
    first_line = first_line.substr(0, first_line.find_first_of(",\n"));
    std::printf("# MPI_Allreduce(MPI_IN_PLACE, f32, MPI_SUM) over %d processes, %s (build %s)\n", n,
                first_line.c_str(), DATARAX_BENCH_BUILD_TYPE);
    std::printf("# reproduce: mpirun -np %d %s --min-kib %lld --max-mib %lld --factor %lld --reps %d "
                "--warmup %d\n",
                n, argv[0], min_kib, max_mib, factor, fixed_reps, warmup);
    std::printf("# STREAM triad, %d processes, 3 x 128 MiB f64 in all: best %.2f GB/s (3 arrays "
                "counted, write-allocate not)\n",
                n, triad_gbs);
    bench::print_all_reduce_legend("rank");
    bench::print_all_reduce_header(n);
  }
  for (long long bytes = min_kib * kKiB; bytes <= max_mib * kMiB; bytes *= factor) {
    const int reps = bench::reps_for(n, bytes, fixed_reps);
    const double b_gbs = stream.measure(5);
    const bench::Samples s = time_all_reduce(rank, n, bytes, reps, warmup);
    if (rank != 0) continue;
    bench::print_all_reduce_row(n, bytes, s, b_gbs, reps);
  }
  MPI_Finalize();
  return 0;
}

namespace {

// Every rank gets the slowest rank's samples back on rank 0; the others get a placeholder.
bench::Samples time_all_reduce(int rank, int n, long long bytes, int reps, int warmup) {
  const auto count = static_cast<std::size_t>(bytes / 4);
  const std::unique_ptr<float[]> buf(new float[count]);
  for (std::size_t i = 0; i < count; ++i) buf[i] = static_cast<float>(static_cast<int>(i % 251) + rank);

  MPI_Allreduce(MPI_IN_PLACE, buf.get(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  const float offset = static_cast<float>(n * (n - 1) / 2);
  int wrong = 0;
  for (std::size_t i = 0; i < count && !wrong; ++i)
    if (buf[i] != static_cast<float>(n) * static_cast<float>(i % 251) + offset) wrong = 1;
  int any_wrong = 0;
  MPI_Allreduce(&wrong, &any_wrong, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  fail_if(any_wrong != 0, rank,
          "MPI_Allreduce of " + bench::size_name(bytes) + " over " + std::to_string(n) +
              " ranks gives the formula's sum");
  std::fill_n(buf.get(), count, 0.0f);

  for (int i = 0; i < warmup; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, buf.get(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  std::vector<double> us(static_cast<std::size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double start = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf.get(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    us[static_cast<std::size_t>(i)] = (MPI_Wtime() - start) * 1e6;
  }
  std::vector<double> slowest = max_over_ranks(us, rank);
  return bench::Samples(rank == 0 ? std::move(slowest) : std::vector<double>{0.0});
}

double now_us() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::vector<double> max_over_ranks(const std::vector<double>& mine, int rank) {
  std::vector<double> out(rank == 0 ? mine.size() : 0);
  MPI_Reduce(mine.data(), rank == 0 ? out.data() : nullptr, static_cast<int>(mine.size()), MPI_DOUBLE,
             MPI_MAX, 0, MPI_COMM_WORLD);
  return out;
}

StreamTriad::StreamTriad(int rank, int n)
    : rank_(rank),
      n_(n),
      elements_(kElementsInAll / static_cast<std::size_t>(n)),
      a_(new double[elements_]),
      b_(new double[elements_]),
      c_(new double[elements_]) {}

double StreamTriad::measure(int reps) {
  double* __restrict a = a_.get();
  const double* __restrict b = b_.get();
  const double* __restrict c = c_.get();
  for (std::size_t i = 0; i < elements_; ++i) {
    a_[i] = 0.0;
    b_[i] = 1.0;
    c_[i] = 2.0;
  }
  // A repetition lasts from the first rank's start to the last rank's end: with more processes
  // than cores the ranks take turns, and a rank's own interval would miss the others' turns (and a
  // rank descheduled just after the barrier would start its clock late). steady_clock is the
  // machine's monotonic clock, the same in every process.
  const auto nreps = static_cast<std::size_t>(reps);
  std::vector<double> start(nreps), stop(nreps);
  for (std::size_t r = 0; r < nreps; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    start[r] = now_us();
    for (std::size_t i = 0; i < elements_; ++i) a[i] = b[i] + 3.0 * c[i];
    bench::clobber_memory();
    stop[r] = now_us();
  }
  std::vector<double> first(nreps), last(nreps);
  MPI_Reduce(start.data(), first.data(), reps, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
  MPI_Reduce(stop.data(), last.data(), reps, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  int wrong = 0;
  for (std::size_t i = 0; i < elements_; ++i)
    if (a[i] != 7.0) wrong = 1;
  int any_wrong = 0;
  MPI_Allreduce(&wrong, &any_wrong, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  fail_if(any_wrong != 0, rank_, "STREAM triad: a[i] == b[i] + 3 * c[i]");
  if (rank_ != 0) return 0.0;
  double best_us = last[0] - first[0];
  for (std::size_t r = 1; r < nreps; ++r) best_us = std::min(best_us, last[r] - first[r]);
  const double bytes =
      3.0 * static_cast<double>(elements_ * static_cast<std::size_t>(n_) * sizeof(double));
  return bench::gb_per_s(bytes, best_us);
}

void fail_if(bool failed, int rank, const std::string& what) {
  if (!failed) return;
  if (rank == 0) std::fprintf(stderr, "verification FAILED: %s\n", what.c_str());
  MPI_Abort(MPI_COMM_WORLD, 1);
}


}  // namespace
