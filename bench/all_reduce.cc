// all_reduce: what the threads backend's in-place f32 sum all-reduce costs, against the memory bound.
//
// The threads backend reduces in shared memory: each of n members reduces its 1/n slice of all n
// inputs and writes the result into all n outputs, so one call reads n*S and writes n*S bytes
// (S = bytes per device). In place, the written lines were read a moment earlier and are still
// cached, so there is no extra write-allocate read: 2*n*S bytes of memory traffic in all. The
// bound that matters for large sizes is therefore t_bound = 2*n*S / B, with B the STREAM triad
// bandwidth this program measures itself (as many threads as cores, a[i] = b[i] + s*c[i] over
// 3 x 128 MiB of doubles, counting 3 arrays per iteration as STREAM does, i.e. NOT counting the
// write-allocate read of a). B is measured once up front (the header's figure) and again right
// before every row, and each row's bound uses its own B: on a shared machine (a VM) the memory
// bandwidth drifts by tens of percent within minutes, and a ratio against a B from another minute
// would measure the drift. ratio = t_bound / t: 1.0 means the all-reduce moves its bytes as fast
// as the triad appears to. Since the triad's plain stores do read each line of a before writing
// it, the memory really moves 4 arrays per triad iteration, so B understates what the memory can
// do by up to 4/3 and ratio can exceed 1; ratio_wa = 0.75 * ratio is the same comparison with the
// write-allocate counted (B' = 4/3 B), the stricter of the two. For small sizes the limit is
// latency (two barriers and a few cache-line transfers between cores); compare with MPI's own
// in-place MPI_Allreduce on the same machine (mpi_all_reduce.cc, run_all_reduce.sh).
//
//   ./build/bench/all_reduce [--devices N] [--min-kib 4] [--max-mib 256] [--factor 4]
//                            [--reps 0] [--warmup 5]
//   mpirun -np P ./build/bench/all_reduce --devices N [...]     # multi-process mode
//
// --devices N runs a mesh of N devices (default: 2, 4 and 8, one table each); --reps 0 picks the
// repetitions per size so that each size moves about 8 GiB (at least 21, at most 2001 calls).
//
// Multi-process mode (started by mpirun): each of the P processes has N devices and the mesh is
// all P * N of them, so every all-reduce crosses processes (the MPI backend: threads inside a
// process, a ring between processes). Process 0 prints the table; the sample of an iteration is
// still the slowest device's time, taken over every process with pmax. The memory-bound columns
// are left out ("-"): P processes share the machine's bandwidth in ways one process's triad does
// not measure. Compare with mpi_all_reduce under mpirun -np P * N (run_all_reduce.sh --processes P).
// With one device per process (--devices 1), datarax's ranks are MPI's ranks, and a second table
// compares it with MPI_Allreduce(MPI_IN_PLACE) over the same processes IN THE SAME LAUNCH, call for
// call: this machine's bandwidth drifts by 2x within minutes, more than the differences measured,
// so tables from separate runs cannot settle a 5% question. MPI runs on a std::vector (what a plain
// MPI program reduces) and on an Array's buffer (datarax's buffer cache: huge pages), the latter to
// tell datarax's algorithm apart from the memory it runs on.
//
// Method. All calls for one (n, size) run inside ONE run_spmd launch, so dispatching work to the
// device threads is never timed. Each device allocates and first-touches its own array, checks one
// all-reduce against the formula (device r holds (i % 251) + r at element i; the sum is exactly
// n * (i % 251) + n(n-1)/2 in f32), refills it with zeros (so the values stay finite however many
// calls follow), warms up, then per iteration: datarax::barrier("data"), read the clock, call
// all_reduce_in_place, read the clock. The sample of an iteration is the largest of the n devices'
// times: a collective is done when its last member is done, and the barrier before it lines the
// devices up to within a wake-up, so no device's time includes the previous iteration.
// (Timing on rank 0 between two barriers would also count a second barrier every iteration.)
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "all_reduce_table.h"
#include "bench_util.h"
#include "datarax/datarax.h"

#ifdef DATARAX_BENCH_MPI
#include <mpi.h>
#endif

namespace {

namespace bench = datarax::bench;

using bench::kKiB;
using bench::kMiB;
constexpr const char* kUsage =
    "all_reduce [--devices N] [--min-kib N] [--max-mib N] [--factor N] [--reps N] [--warmup N]";

struct Triad {
  double best_gbs;    // 3 arrays counted (STREAM convention): the B of the bound
  double median_gbs;  // likewise, median over repetitions
  int threads;
};

// STREAM triad over 3 x 128 MiB of f64, one thread per hardware thread. The arrays live as long
// as the object, so later measurements pay no page faults.
class StreamTriad {
 public:
  StreamTriad();
  Triad measure(int reps);

 private:
  static constexpr std::size_t kElements = 128 * kMiB / sizeof(double);
  std::unique_ptr<double[]> a_, b_, c_;
  int threads_;
};

// The slowest device's times per call; with `raw_mpi`, also those of MPI's own in-place
// MPI_Allreduce on MPI_COMM_WORLD, timed in the same launch, call for call: on a std::vector (mpi)
// and on an Array's buffer (mpi_cache).
struct Timings {
  bench::Samples datarax;
  std::optional<bench::Samples> mpi;
  std::optional<bench::Samples> mpi_cache;
};

Timings time_all_reduce(int n, long long bytes, int reps, int warmup, bool raw_mpi);

#ifdef DATARAX_BENCH_MPI
constexpr bool kWithMpi = true;
void raw_all_reduce(float* data, std::int64_t count) {
  MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
#else
constexpr bool kWithMpi = false;
void raw_all_reduce(float*, std::int64_t) {}
#endif

}  // namespace

int main(int argc, char** argv) {
  bench::reject_unknown_flags(
      argc, argv, {"--devices", "--min-kib", "--max-mib", "--factor", "--reps", "--warmup"}, kUsage);
  const auto only = static_cast<int>(bench::int_flag(argc, argv, "--devices", 0, 1, kUsage));
  const long long min_kib = bench::int_flag(argc, argv, "--min-kib", 4, 1, kUsage);
  const long long max_mib = bench::int_flag(argc, argv, "--max-mib", 256, 1, kUsage);
  const long long factor = bench::int_flag(argc, argv, "--factor", 4, 2, kUsage);
  const auto fixed_reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 0, 0, kUsage));
  const auto warmup = static_cast<int>(bench::int_flag(argc, argv, "--warmup", 5, 0, kUsage));
  if (only > 8) {
    std::fprintf(stderr, "--devices must be 1..8\nusage: %s\n", kUsage);
    return 2;
  }
  const std::vector<int> counts = only > 0 ? std::vector<int>{only} : std::vector<int>{2, 4, 8};

  // Under mpirun: N devices per process, one table over all processes' devices.
  datarax::initialize({.num_cpu_devices = only > 0 ? only : 8});
  const bool multi = datarax::process_count() > 1;
  if (multi && only == 0) {
    std::fprintf(stderr, "under mpirun, give --devices N (devices per process)\nusage: %s\n", kUsage);
    return 2;
  }
  const bool printer = datarax::process_index() == 0;
  StreamTriad stream;
  const Triad triad = multi ? Triad{0, 0, 0} : stream.measure(15);

  if (printer) {
    if (multi)
      std::printf("# all_reduce_in_place(x, sum, \"data\"): f32, %d processes x %d devices, MPI backend "
                  "(build %s)\n", datarax::process_count(), only, DATARAX_BENCH_BUILD_TYPE);
    else
      std::printf("# all_reduce_in_place(x, sum, \"data\"): f32, threads backend (build %s)\n",
                  DATARAX_BENCH_BUILD_TYPE);
    std::printf("# reproduce: %s%d %s%s%s --min-kib %lld --max-mib %lld --factor %lld --reps %d --warmup %d\n",
                multi ? "mpirun -np " : "", multi ? datarax::process_count() : 0, argv[0],
                only > 0 ? " --devices " : "", only > 0 ? std::to_string(only).c_str() : "", min_kib, max_mib,
                factor, fixed_reps, warmup);
    if (!multi)
      std::printf("# STREAM triad, %d threads, 3 x 128 MiB f64: best %.2f GB/s, median %.2f GB/s "
                  "(3 arrays counted, write-allocate not; counting it: best %.2f GB/s)\n",
                  triad.threads, triad.best_gbs, triad.median_gbs, triad.best_gbs * 4.0 / 3.0);
    bench::print_all_reduce_legend("device");
  }

  for (const int per_process : counts) {
    const int n = multi ? datarax::device_count() : per_process;
    // One device per process: datarax's ranks are MPI's, so MPI_Allreduce over the same processes
    // can be timed call for call beside it (see time_all_reduce).
    const bool raw_mpi = kWithMpi && multi && per_process == 1;
    std::vector<std::string> same_launch;
    if (printer) bench::print_all_reduce_header(n);
    for (long long bytes = min_kib * kKiB; bytes <= max_mib * kMiB; bytes *= factor) {
      const int reps = bench::reps_for(n, bytes, fixed_reps);
      const double b_gbs = multi ? 0.0 : stream.measure(5).best_gbs;
      const Timings t = time_all_reduce(n, bytes, reps, warmup, raw_mpi);
      if (printer) bench::print_all_reduce_row(n, bytes, t.datarax, b_gbs, reps);
      if (printer && t.mpi) {
        char row[200];
        std::snprintf(row, sizeof row, "%10lld %8s | %12.2f | %12.2f %11.3f | %12.2f %11.3f | %5d", bytes,
                      bench::size_name(bytes).c_str(), t.datarax.median(), t.mpi->median(),
                      t.mpi->median() / t.datarax.median(), t.mpi_cache->median(),
                      t.mpi_cache->median() / t.datarax.median(), reps);
        same_launch.push_back(row);
      }
    }
    if (printer && !same_launch.empty()) {
      std::printf("## same launch, call for call in rotation: datarax vs MPI_Allreduce(MPI_IN_PLACE) on "
                  "MPI_COMM_WORLD, over a std::vector (mpi) and over an Array's buffer (mpi_cache); median us "
                  "of the slowest process; ratio > 1: datarax is faster\n");
      std::printf("%10s %8s | %12s | %12s %11s | %12s %11s | %5s\n", "bytes", "size", "datarax_us", "mpi_us",
                  "mpi/datarax", "mpi_cache_us", "ratio", "reps");
      for (const std::string& row : same_launch) std::printf("%s\n", row.c_str());
    }
  }
  return 0;
}

namespace {

// Times `reps` in-place all-reduces of `bytes` per device over the first n devices (see the file
// comment for the method). Exits with a message if the verification call gives a wrong value.
Timings time_all_reduce(int n, long long bytes, int reps, int warmup, bool raw_mpi) {
  const std::vector<datarax::Device>& all = datarax::devices();
  const datarax::Mesh mesh(std::vector<datarax::Device>(all.begin(), all.begin() + n), {{"data", n}});
  const std::int64_t count = bytes / 4;
  // Per contender and iteration, the slowest device's time over every process (pmax in the launch).
  std::vector<std::vector<double>> slowest(3, std::vector<double>(static_cast<std::size_t>(reps), 0.0));
  std::mutex failure_mu;
  std::string failure;

  datarax::run_spmd(mesh, [&](const datarax::Device& device) {
    const int rank = datarax::axis_index("data");
    datarax::Array x = datarax::Array::empty(datarax::Shape{count}, datarax::DType::f32, device);
    std::span<float> v = x.data<float>();
    for (std::int64_t i = 0; i < count; ++i) v[static_cast<std::size_t>(i)] = static_cast<float>(i % 251 + rank);

    datarax::all_reduce_in_place(x, datarax::ReduceOp::sum, "data");
    const float offset = static_cast<float>(n * (n - 1) / 2);
    for (std::int64_t i = 0; i < count; ++i) {
      const float want = static_cast<float>(n) * static_cast<float>(i % 251) + offset;
      if (v[static_cast<std::size_t>(i)] != want) {
        std::lock_guard lock(failure_mu);
        failure = "n=" + std::to_string(n) + ", " + bench::size_name(bytes) + ": " + device.to_string() +
                  " element " + std::to_string(i) + " is " + std::to_string(v[static_cast<std::size_t>(i)]) +
                  ", expected " + std::to_string(want);
        break;
      }
    }
    x.fill(0.0);

    // The MPI columns' buffers: a std::vector, what a plain MPI program would reduce, and an Array
    // of datarax's (the buffer cache's memory: huge pages where the kernel offers them), so that
    // the table tells the algorithm apart from the memory it runs on. First-touched here.
    std::vector<float> y(raw_mpi ? static_cast<std::size_t>(count) : 0, 0.0f);
    datarax::Array z = datarax::Array::zeros(datarax::Shape{raw_mpi ? count : 0}, datarax::DType::f32, device);
    auto timed = [&](int contender) {
      datarax::barrier("data");
      switch (contender) {
        case 0: return bench::time_us([&] { datarax::all_reduce_in_place(x, datarax::ReduceOp::sum, "data"); });
        case 1: return bench::time_us([&] { raw_all_reduce(y.data(), count); });
        default: return bench::time_us([&] { raw_all_reduce(z.data<float>().data(), count); });
      }
    };
    const int contenders = raw_mpi ? 3 : 1;
    for (int i = 0; i < warmup; ++i)
      for (int c = 0; c < contenders; ++c) timed(c);
    std::vector<std::vector<double>> mine(static_cast<std::size_t>(contenders),
                                          std::vector<double>(static_cast<std::size_t>(reps)));
    // Iteration i runs the contenders in the (i mod 6)-th of their 6 orders, so that each comes
    // first, second and last, and right after each of the others (whose traffic may have evicted its
    // buffer from the cache), equally often.
    constexpr int kOrders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int i = 0; i < reps; ++i)
      for (const int c : kOrders[i % 6])
        if (c < contenders) mine[static_cast<std::size_t>(c)][static_cast<std::size_t>(i)] = timed(c);
    for (int c = 0; c < contenders; ++c) {
      datarax::Array times = datarax::Array::from_vector<double>(mine[static_cast<std::size_t>(c)], device);
      datarax::all_reduce_in_place(times, datarax::ReduceOp::max, "data");
      if (rank == 0)
        std::copy(times.data<double>().begin(), times.data<double>().end(),
                  slowest[static_cast<std::size_t>(c)].begin());
    }
  });
  bench::verify(failure.empty(), failure);
  Timings t{bench::Samples(std::move(slowest[0])), std::nullopt, std::nullopt};
  if (raw_mpi) {
    t.mpi.emplace(std::move(slowest[1]));
    t.mpi_cache.emplace(std::move(slowest[2]));
  }
  return t;
}

StreamTriad::StreamTriad()
    : a_(new double[kElements]),  // not initialized here: each thread first-touches its own part
      b_(new double[kElements]),
      c_(new double[kElements]),
      threads_(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {}

// a[i] = b[i] + 3 * c[i], each thread on its own contiguous part (which it also initializes,
// untimed), all released together by a barrier. A repetition lasts from the first thread's start
// to the last one's end; bandwidth counts 24 bytes per element (read b, read c, write a).
Triad StreamTriad::measure(int reps) {
  using Clock = std::chrono::steady_clock;
  const auto nreps = static_cast<std::size_t>(reps);
  std::vector<std::vector<Clock::time_point>> start(static_cast<std::size_t>(threads_),
                                                    std::vector<Clock::time_point>(nreps)),
      stop = start;
  std::barrier sync(threads_);
  std::atomic<bool> wrong{false};

  auto work = [&](int t) {
    const auto part = [&](int k) {
      return kElements * static_cast<std::size_t>(k) / static_cast<std::size_t>(threads_);
    };
    const std::size_t begin = part(t), end = part(t + 1);
    double* __restrict a = a_.get();
    const double* __restrict b = b_.get();
    const double* __restrict c = c_.get();
    for (std::size_t i = begin; i < end; ++i) {
      a_[i] = 0.0;
      b_[i] = 1.0;
      c_[i] = 2.0;
    }
    for (std::size_t r = 0; r < nreps; ++r) {
      sync.arrive_and_wait();
      start[static_cast<std::size_t>(t)][r] = Clock::now();
      for (std::size_t i = begin; i < end; ++i) a[i] = b[i] + 3.0 * c[i];
      bench::clobber_memory();
      stop[static_cast<std::size_t>(t)][r] = Clock::now();
    }
    for (std::size_t i = begin; i < end; ++i)
      if (a[i] != 7.0) wrong = true;
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads_; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& t : pool) t.join();
  bench::verify(!wrong, "STREAM triad: a[i] == b[i] + 3 * c[i]");

  std::vector<double> span_us(nreps);
  for (std::size_t r = 0; r < nreps; ++r) {
    Clock::time_point first = start[0][r], last = stop[0][r];
    for (std::size_t t = 1; t < start.size(); ++t) {
      first = std::min(first, start[t][r]);
      last = std::max(last, stop[t][r]);
    }
    span_us[r] = std::chrono::duration<double, std::micro>(last - first).count();
  }
  const bench::Samples s(std::move(span_us));
  const double bytes = 3.0 * static_cast<double>(kElements * sizeof(double));
  return {bench::gb_per_s(bytes, s.min()), bench::gb_per_s(bytes, s.median()), threads_};
}

// "4KiB", "16MiB".

}  // namespace
