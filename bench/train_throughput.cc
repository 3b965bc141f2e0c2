// Training throughput of the default model (MLP 784-512-512-10, Adam, global batch 256) with 1 and
// 2 devices, beside the GEMM bound: the step's matrix products timed alone, on the same number of
// threads, with the same shapes and the same BLAS, in the same run.
//
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/bench/train_throughput [--steps 300] [--warmup 30]
//
// For each device count it prints: the median step time in steady state (steps after the warm-up),
// samples/s = 256 / median step, the GEMM-only time of one device's share of a step (median over
// repetitions, all devices' threads running their GEMMs at once) and so the bound in samples/s, the
// ratio measured / bound, and the heap allocations per step in steady state (operator new calls,
// counted by this program) — the heap profile the trainer promises: none per step after warm-up.
#include <cblas.h>

#include <atomic>
#include <cstdio>
#include <new>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "datarax/device_discovery.h"
#include "datarax/train/trainer.h"

// Every allocation of the process goes through here, so that steady-state steps can be checked for
// allocations.
static std::atomic<long long> g_allocations{0};
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);

namespace {

using Clock = std::chrono::steady_clock;
namespace bench = datarax::bench;

// Records when each step ended and how many allocations had happened by then.
class StepClock final : public datarax::train::TrainObserver {
 public:
  explicit StepClock(std::size_t steps) {
    ends.reserve(steps);  // so that recording allocates nothing per step
    allocations.reserve(steps);
  }
  void on_step(const datarax::train::StepMetrics&, int, std::int64_t) override {
    ends.push_back(Clock::now());
    allocations.push_back(g_allocations.load());
  }
  std::vector<Clock::time_point> ends;
  std::vector<long long> allocations;
};

struct Gemm {
  bool ta, tb;
  int M, N, K;
};

// One device's matrix products in a step of the MLP with local batch b (forward, then backward:
// dW = inpᵀ·dout for every layer, dinp = dout·Wᵀ for all but the first).
std::vector<Gemm> step_gemms(int b, const std::vector<int>& sizes) {
  std::vector<Gemm> g;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) g.push_back({false, false, b, sizes[l + 1], sizes[l]});
  for (std::size_t l = sizes.size() - 1; l-- > 0;) {
    g.push_back({true, false, sizes[l], sizes[l + 1], b});
    if (l > 0) g.push_back({false, true, b, sizes[l], sizes[l + 1]});
  }
  return g;
}

double flops(const std::vector<Gemm>& gemms) {
  double f = 0;
  for (const Gemm& g : gemms) f += 2.0 * g.M * g.N * g.K;
  return f;
}

// Median microseconds of one device's GEMM sequence, with `threads` threads running it at once.
double gemm_time_us(const std::vector<Gemm>& gemms, int threads, int reps) {
  std::vector<double> per_thread_median(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  std::atomic<int> ready{0};
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<std::vector<float>> a, b, c;
      for (const Gemm& g : gemms) {
        a.emplace_back(static_cast<std::size_t>(g.M) * g.K, 0.5f);
        b.emplace_back(static_cast<std::size_t>(g.K) * g.N, 0.25f);
        c.emplace_back(static_cast<std::size_t>(g.M) * g.N, 0.0f);
      }
      auto run = [&] {
        for (std::size_t i = 0; i < gemms.size(); ++i) {
          const Gemm& g = gemms[i];
          cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans, g.M, g.N,
                      g.K, 1.0f, a[i].data(), g.ta ? g.M : g.K, b[i].data(), g.tb ? g.K : g.N, 0.0f, c[i].data(), g.N);
        }
      };
      ready.fetch_add(1);
      while (ready.load() < threads) {
      }
      per_thread_median[static_cast<std::size_t>(t)] = bench::measure({.warmup = 5, .reps = reps}, run).median();
    });
  for (auto& t : pool) t.join();
  double worst = 0;
  for (double m : per_thread_median) worst = std::max(worst, m);
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "train_throughput [--steps N] [--warmup N] [--max-devices N]";
  bench::reject_unknown_flags(argc, argv, {"--steps", "--warmup", "--max-devices"}, usage);
  const int steps = static_cast<int>(bench::int_flag(argc, argv, "--steps", 300, 10, usage));
  const int warmup = static_cast<int>(bench::int_flag(argc, argv, "--warmup", 30, 1, usage));
  const int max_devices = static_cast<int>(bench::int_flag(argc, argv, "--max-devices", 2, 1, usage));
  datarax::initialize({.num_cpu_devices = max_devices});
  openblas_set_num_threads(1);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("# train_throughput: MLP 784-512-512-10, Adam, global batch 256; %d steps, the first %d untimed\n",
              steps, warmup);
  std::printf("# OpenBLAS kernel: %s (OPENBLAS_CORETYPE %s)\n", openblas_get_corename(),
              coretype ? coretype : "unset");
  std::printf("# command: %s", argv[0]);
  for (int i = 1; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\n\n");
  std::printf("devices | optimizer state | step ms (median, p10-p90) | samples/s | GEMM ms/step | GEMM GFLOP/s/dev | "
              "bound samples/s | ratio | allocs/step\n");
  for (int n = 1; n <= max_devices; n *= 2)
  for (bool sharded : {false, true}) {
    if (sharded && n == 1) continue;
    datarax::train::TrainConfig config;
    config.data_parallel = n;
    config.steps = steps;
    config.schedule = "constant";
    config.zero_stage = sharded ? 1 : 0;
    StepClock clock(static_cast<std::size_t>(steps));
    const auto report = datarax::train::train(config, {.observer = &clock});
    bench::verify(report.steps.size() == static_cast<std::size_t>(steps), "every step ran");
    bench::verify(report.steps.back().loss < report.steps.front().loss, "the loss fell");
    std::vector<double> us;
    for (std::size_t s = static_cast<std::size_t>(warmup); s < clock.ends.size(); ++s)
      us.push_back(std::chrono::duration<double, std::micro>(clock.ends[s] - clock.ends[s - 1]).count());
    const bench::Samples step(us);
    const double allocs_per_step =
        static_cast<double>(clock.allocations.back() - clock.allocations[static_cast<std::size_t>(warmup)]) /
        static_cast<double>(clock.ends.size() - static_cast<std::size_t>(warmup) - 1);

    const auto gemms = step_gemms(256 / n, {784, 512, 512, 10});
    const double gemm_us = gemm_time_us(gemms, n, 51);
    const double samples = 256.0 / (step.median() / 1e6);
    const double bound = 256.0 / (gemm_us / 1e6);
    std::printf("%7d | %-15s | %7.3f (%6.3f-%6.3f)    | %9.0f | %12.3f | %16.1f | %15.0f | %5.2f | %11.1f\n", n,
                sharded ? "sharded (ZeRO-1)" : "replicated",
                step.median() / 1e3, step.percentile(10) / 1e3, step.percentile(90) / 1e3, samples, gemm_us / 1e3,
                flops(gemms) / gemm_us / 1e3, bound, samples / bound, allocs_per_step);
  }
  return 0;
}
