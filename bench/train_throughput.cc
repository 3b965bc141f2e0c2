// Training throughput on every layout of the work — data parallel (DP), ZeRO-1, FSDP (ZeRO-3),
// tensor parallel (TP) and DP x TP — for the default model (MLP 784-512-512-10) and a wide one
// (--hidden 4096,4096), Adam, global batch 256, beside each layout's GEMM bound: the matrix
// products one device makes in a step (its shapes under that layout) timed alone, on as many
// threads as the layout has devices, with the same BLAS, in the same run.
//
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/bench/train_throughput [--rounds 3]
//       [--steps 200] [--wide-steps 16] [--warmup 10] [--model default|wide|both] [--precision f32|bf16]
//
// --precision bf16 trains with bf16 matrix products (TrainConfig::precision) and times the bound's
// products in bf16 too (nn::matmul under a MatmulPrecisionScope): the bound is then bf16's.
//
// The layouts run interleaved, round after round (this machine's speed drifts over minutes). For
// each model and layout it prints: devices; the bytes one device holds for parameters, gradients,
// optimizer state and the layer in flight (read from the trainer's buffers); the median step
// time (the median over rounds of each round's steady-state median: the time between the ends of
// consecutive steps after the warm-up); samples/s = 256 / that; the GEMM bound in samples/s and
// the ratio measured / bound; the step time over DP's on the same device count (the median of the
// per-round ratios); and the heap allocations per step in steady state (every malloc of the process,
// interposed: operator new, OpenBLAS, anything).
#include <cblas.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <string>
#include <new>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "gemm_shapes.h"
#include "malloc_count.h"
#include "datarax/device_discovery.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/matmul_kernel.h"
#include "datarax/nn/precision.h"
#include "datarax/train/builtin_models.h"
#include "datarax/train/trainer.h"

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);

namespace {

using Clock = std::chrono::steady_clock;
namespace bench = datarax::bench;
using bench::Gemm;
using bench::flops;
using bench::step_gemms;

// Records when each step ended (on the devices: the host may learn of several at once) and how many
// allocations had happened by the time the host reported it.
class StepClock final : public datarax::train::TrainObserver {
 public:
  explicit StepClock(std::size_t steps) {
    ends.reserve(steps);  // so that recording allocates nothing per step
    allocations.reserve(steps);
    phases.reserve(steps);
  }
  void on_step(const datarax::train::StepMetrics& m, int, std::int64_t) override {
    ends.push_back(m.finished_at);
    allocations.push_back(bench::allocations());
    phases.push_back(m.phase_seconds);
  }
  std::vector<Clock::time_point> ends;
  std::vector<long long> allocations;
  std::vector<std::array<double, datarax::kPhaseCount>> phases;
};

// Median microseconds of one device's GEMM sequence, with `threads` threads running it at once,
// each through nn::matmul in `precision` (f32: OpenBLAS's sgemm, as the trainer calls it).
double gemm_time_us(const std::vector<Gemm>& gemms, int threads, int reps, datarax::nn::Precision precision) {
  std::vector<double> per_thread_median(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  std::atomic<int> ready{0};
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const datarax::nn::MatmulPrecisionScope scope(precision);
      std::vector<std::vector<float>> a, b, c;
      for (const Gemm& g : gemms) {
        a.emplace_back(static_cast<std::size_t>(g.M) * g.K, 0.5f);
        b.emplace_back(static_cast<std::size_t>(g.K) * g.N, 0.25f);
        c.emplace_back(static_cast<std::size_t>(g.M) * g.N, 0.0f);
      }
      auto run = [&] {
        for (std::size_t i = 0; i < gemms.size(); ++i) {
          const Gemm& g = gemms[i];
          datarax::nn::matmul(g.ta, g.tb, g.M, g.N, g.K, 1.0f, a[i].data(), g.ta ? g.M : g.K, b[i].data(),
                              g.tb ? g.K : g.N, 0.0f, c[i].data(), g.N);
        }
      };
      ready.fetch_add(1);
      while (ready.load() < threads) {
      }
      per_thread_median[static_cast<std::size_t>(t)] = bench::measure({.warmup = 2, .reps = reps}, run).median();
    });
  for (auto& t : pool) t.join();
  double worst = 0;
  for (double m : per_thread_median) worst = std::max(worst, m);
  return worst;
}

struct Layout {
  const char* name;
  int data, model, stage;
  int devices() const { return data * model; }
};

struct Model {
  const char* name;
  std::vector<int> hidden;
  int steps;
};

// One device's GEMMs under a layout: Megatron's splits (column, row, ..., the classifier whole).
std::vector<Gemm> layout_gemms(const Model& m, const Layout& l) {
  std::vector<int> sizes = {784};
  sizes.insert(sizes.end(), m.hidden.begin(), m.hidden.end());
  sizes.push_back(10);
  const int layers = static_cast<int>(sizes.size()) - 1;
  std::vector<int> rows, cols;
  for (int i = 0; i < layers; ++i) {
    const bool split = l.model > 1 && i < layers - 1 - (layers - 1) % 2;  // pairs; an odd one out stays whole
    const bool column = split && i % 2 == 0, row = split && i % 2 == 1;
    rows.push_back(row ? sizes[static_cast<std::size_t>(i)] / l.model : sizes[static_cast<std::size_t>(i)]);
    cols.push_back(column ? sizes[static_cast<std::size_t>(i) + 1] / l.model : sizes[static_cast<std::size_t>(i) + 1]);
  }
  return step_gemms(256 / l.data, rows, cols);
}

struct Run {
  double step_us = 0, allocs = 0;
  datarax::train::DeviceBytes bytes;
  std::array<double, datarax::kPhaseCount> phase_us{};  // the first device's, median per step
};

Run run_layout(const Model& m, const Layout& l, int warmup, datarax::nn::Precision precision) {
  datarax::train::TrainConfig config;
  config.precision = std::string(datarax::nn::to_string(precision));
  config.data_parallel = l.data;
  config.model_parallel = l.model;
  config.zero_stage = l.stage;
  config.steps = m.steps;
  config.schedule = "constant";
  config.time_phases = true;
  StepClock clock(static_cast<std::size_t>(m.steps));
  const datarax::train::BuiltinModel model{.name = "mlp", .hidden = m.hidden};
  const auto report = datarax::train::train(model, config, {.observer = &clock});
  bench::verify(report.steps.size() == static_cast<std::size_t>(m.steps), "every step ran");
  std::vector<double> us;
  for (std::size_t s = static_cast<std::size_t>(warmup); s < clock.ends.size(); ++s)
    us.push_back(std::chrono::duration<double, std::micro>(clock.ends[s] - clock.ends[s - 1]).count());
  Run r;
  r.step_us = bench::Samples(us).median();
  r.allocs = static_cast<double>(clock.allocations.back() - clock.allocations[static_cast<std::size_t>(warmup)]) /
             static_cast<double>(clock.ends.size() - static_cast<std::size_t>(warmup) - 1);
  r.bytes = report.info.bytes_per_device;
  for (std::size_t p = 0; p < datarax::kPhaseCount; ++p) {
    std::vector<double> v;
    for (std::size_t s = static_cast<std::size_t>(warmup) + 1; s < clock.phases.size(); ++s) v.push_back(clock.phases[s][p] * 1e6);
    r.phase_us[p] = bench::Samples(v).median();
  }
  return r;
}

double median(std::vector<double> v) { return bench::Samples(std::move(v)).median(); }

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "train_throughput [--rounds N] [--steps N] [--wide-steps N] [--warmup N] [--model default|wide|both] "
      "[--precision f32|bf16]";
  bench::reject_unknown_flags(argc, argv, {"--rounds", "--steps", "--wide-steps", "--warmup", "--model", "--precision"},
                              usage);
  const int rounds = static_cast<int>(bench::int_flag(argc, argv, "--rounds", 3, 1, usage));
  const int steps = static_cast<int>(bench::int_flag(argc, argv, "--steps", 200, 10, usage));
  const int wide_steps = static_cast<int>(bench::int_flag(argc, argv, "--wide-steps", 16, 6, usage));
  const int warmup = static_cast<int>(bench::int_flag(argc, argv, "--warmup", 10, 1, usage));
  const std::string which = bench::string_flag(argc, argv, "--model", "both", usage);
  bench::verify(which == "default" || which == "wide" || which == "both", "--model is default, wide or both");
  const std::string precision_text = bench::string_flag(argc, argv, "--precision", "f32", usage);
  bench::verify(precision_text == "f32" || precision_text == "bf16", "--precision is f32 or bf16");
  const datarax::nn::Precision precision = datarax::nn::parse_precision(precision_text);
  bench::verify(datarax::nn::cpu_supports(precision), "--precision bf16 needs a CPU with AVX512_BF16");
  bench::verify(warmup + 2 < std::min(steps, wide_steps), "--warmup leaves at least 2 timed steps");
  datarax::initialize({.num_cpu_devices = 4});
  openblas_set_num_threads(1);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("# train_throughput: Adam, global batch 256, %s matrix products, %d rounds; the first %d steps of each "
              "run untimed\n",
              precision_text.c_str(), rounds, warmup);
  std::printf("# OpenBLAS kernel: %s (OPENBLAS_CORETYPE %s); %u hardware threads\n", openblas_get_corename(),
              coretype ? coretype : "unset", std::thread::hardware_concurrency());
  std::printf("# %s matrix products: %s\n", precision_text.c_str(),
              datarax::nn::matmul_kernel_choice(precision).reason.c_str());
  std::printf("# command: %s", argv[0]);
  for (int i = 1; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\n");

  const std::vector<Layout> layouts = {{"1 device", 1, 1, 0}, {"DP", 2, 1, 0},     {"ZeRO-1", 2, 1, 1},
                                       {"FSDP", 2, 1, 3},     {"TP", 1, 2, 0},     {"DP x TP", 2, 2, 0}};
  std::vector<Model> models;
  if (which != "wide") models.push_back({"MLP 784-512-512-10", {512, 512}, steps});
  if (which != "default") models.push_back({"MLP 784-4096-4096-10", {4096, 4096}, wide_steps});
  for (const Model& m : models) {
    // runs[layout][round]; the bounds once per layout and round too (interleaved with the runs).
    std::vector<std::vector<Run>> runs(layouts.size());
    std::vector<std::vector<double>> bound_us(layouts.size());
    for (int r = 0; r < rounds; ++r)
      for (std::size_t i = 0; i < layouts.size(); ++i) {
        runs[i].push_back(run_layout(m, layouts[i], warmup, precision));
        const auto gemms = layout_gemms(m, layouts[i]);
        const double one = gemm_time_us(gemms, 1, 1, precision);  // a first pass sizes the repetitions (~0.5 s)
        bound_us[i].push_back(
            gemm_time_us(gemms, layouts[i].devices(), std::clamp(static_cast<int>(5e5 / one), 3, 51), precision));
      }
    std::printf("\n## %s (%d steps per run)\n\n", m.name, m.steps);
    std::printf("layout | devices | MiB/device (params+grads+opt+in flight) | step ms | samples/s | bound samples/s | "
                "ratio | step / DP step | allocs/step\n");
    std::printf("---|---|---|---|---|---|---|---|---\n");
    for (std::size_t i = 0; i < layouts.size(); ++i) {
      const Layout& l = layouts[i];
      std::vector<double> step, ratio_to_dp;
      for (int r = 0; r < rounds; ++r) {
        step.push_back(runs[i][static_cast<std::size_t>(r)].step_us);
        // DP on the same number of devices: data = devices.
        for (std::size_t j = 0; j < layouts.size(); ++j)
          if (layouts[j].model == 1 && layouts[j].stage == 0 && layouts[j].devices() == l.devices())
            ratio_to_dp.push_back(runs[i][static_cast<std::size_t>(r)].step_us /
                                  runs[j][static_cast<std::size_t>(r)].step_us);
      }
      const double step_us = median(step), bound = median(bound_us[i]);
      const datarax::train::DeviceBytes& b = runs[i].back().bytes;
      const auto mib = [](std::int64_t x) { return static_cast<double>(x) / (1 << 20); };
      char vs_dp[32] = "-";
      if (!ratio_to_dp.empty()) std::snprintf(vs_dp, sizeof vs_dp, "%.2f", median(ratio_to_dp));
      std::printf("%s | %d | %.1f (%.1f+%.1f+%.1f+%.1f) | %.2f | %.0f | %.0f | %.2f | %s | %.1f\n", l.name, l.devices(),
                  mib(b.total()), mib(b.params), mib(b.grads), mib(b.optimizer), mib(b.in_flight), step_us / 1e3,
                  256.0 / (step_us / 1e6), 256.0 / (bound / 1e6), bound / step_us, vs_dp, runs[i].back().allocs);
    }
    // Where the first device's step time goes: per phase, the median over steps, then over rounds.
    std::printf("\nphase (ms per step, first device) ");
    for (const Layout& l : layouts) std::printf("| %s ", l.name);
    std::printf("\n---");
    for (std::size_t i = 0; i < layouts.size(); ++i) std::printf("|---");
    std::printf("\n");
    for (std::size_t p = 0; p < datarax::kPhaseCount; ++p) {
      std::printf("%s ", std::string(datarax::to_string(static_cast<datarax::Phase>(p))).c_str());
      for (std::size_t i = 0; i < layouts.size(); ++i) {
        std::vector<double> v;
        for (const Run& run : runs[i]) v.push_back(run.phase_us[p]);
        std::printf("| %.3f ", median(v) / 1e3);
      }
      std::printf("\n");
    }
    std::printf("GEMM bound (ms per step) ");
    for (std::size_t i = 0; i < layouts.size(); ++i) std::printf("| %.3f ", median(bound_us[i]) / 1e3);
    std::printf("\n");
    std::printf("\nGEMM GFLOP per step per device: ");
    for (const Layout& l : layouts) std::printf("%s %.2f; ", l.name, flops(layout_gemms(m, l)) / 1e9);
    std::printf("\n");
  }
  return 0;
}
