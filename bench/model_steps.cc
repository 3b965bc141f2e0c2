// The built-in models through the trainer (train::train, as datarax-train runs them) on each
// 2-device layout: the median step time, samples/s, and the heap allocations per step in steady
// state (every malloc of the process, interposed) — the 0-allocation property for any model.
//
//   ./build/bench/model_steps [--model mlp|cnn|gpt|all] [--steps 60] [--warmup 10] [--rounds 1]
//       [--batch N] [--precision f32|bf16] [--n-layer L --n-head H --n-embd C --block-size T --text FILE]
//       [--dropout P]
//
// --batch sets the global batch (default 256; gpt 64 blocks); the GPT's sizes default to
// datarax-train's (nanoGPT's "baby GPT" is --n-layer 6 --n-head 6 --n-embd 384 --block-size 256
// --batch 8), its text to Debian's fortunes, its dropout rate in training to 0. For the GPT the
// table has tokens/s as well.
//
// Layouts: 1 device, data 2 (replicated), data 2 ZeRO-1, data 2 FSDP, model 2; interleaved by round.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"
#include "datarax/device_discovery.h"
#include "datarax/train/builtin_models.h"
#include "malloc_count.h"

namespace {

using Clock = std::chrono::steady_clock;

class StepClock final : public datarax::train::TrainObserver {
 public:
  explicit StepClock(std::size_t steps) {
    ends.reserve(steps);
    allocations.reserve(steps);
  }
  void on_step(const datarax::train::StepMetrics& m, int, std::int64_t) override {
    ends.push_back(m.finished_at);
    allocations.push_back(datarax::bench::allocations());
  }
  std::vector<Clock::time_point> ends;
  std::vector<long long> allocations;
};

struct Layout {
  const char* name;
  int data, model, stage;
};

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "model_steps [--model mlp|cnn|gpt|all] [--steps N] [--warmup N] [--rounds N] [--batch N] "
      "[--precision f32|bf16] [--n-layer L --n-head H --n-embd C --block-size T --text FILE] [--dropout P]";
  namespace bench = datarax::bench;
  bench::reject_unknown_flags(argc, argv,
                              {"--model", "--steps", "--warmup", "--rounds", "--batch", "--precision", "--n-layer",
                               "--n-head", "--n-embd", "--block-size", "--text", "--dropout"},
                              usage);
  const std::string which = bench::string_flag(argc, argv, "--model", "all", usage);
  const std::string precision = bench::string_flag(argc, argv, "--precision", "f32", usage);
  const int steps = static_cast<int>(bench::int_flag(argc, argv, "--steps", 60, 1, usage));
  const int warmup = static_cast<int>(bench::int_flag(argc, argv, "--warmup", 10, 0, usage));
  const int rounds = static_cast<int>(bench::int_flag(argc, argv, "--rounds", 1, 1, usage));
  const int batch = static_cast<int>(bench::int_flag(argc, argv, "--batch", 0, 0, usage));  // 0: the model's default
  datarax::train::BuiltinModel gpt{.name = "gpt"};
  gpt.n_layer = bench::int_flag(argc, argv, "--n-layer", gpt.n_layer, 1, usage);
  gpt.n_head = bench::int_flag(argc, argv, "--n-head", gpt.n_head, 1, usage);
  gpt.n_embd = bench::int_flag(argc, argv, "--n-embd", gpt.n_embd, 1, usage);
  gpt.block_size = bench::int_flag(argc, argv, "--block-size", gpt.block_size, 1, usage);
  gpt.text = bench::string_flag(argc, argv, "--text", gpt.text, usage);
  gpt.dropout = std::stod(bench::string_flag(argc, argv, "--dropout", "0", usage));
  if (steps < warmup + 3) {
    std::fprintf(stderr, "model_steps: --steps must be at least --warmup + 3\n");
    return 2;
  }
  datarax::initialize({.num_cpu_devices = 2});
  std::printf("model_steps (%s build): %d steps, %d warm-up, %d rounds, %s\n", DATARAX_BENCH_BUILD_TYPE, steps, warmup, rounds,
              precision.c_str());
  std::vector<std::string> models = which == "all" ? std::vector<std::string>{"mlp", "cnn", "gpt"} : std::vector<std::string>{which};
  const std::vector<Layout> layouts = {{"1 device", 1, 1, 0}, {"data 2", 2, 1, 0}, {"data 2 ZeRO-1", 2, 1, 1},
                                       {"data 2 FSDP", 2, 1, 3}, {"model 2", 1, 2, 0}};
  for (const std::string& name : models) {
    const datarax::train::BuiltinModel model = name == "gpt" ? gpt : datarax::train::BuiltinModel{.name = name};
    const int global = batch > 0 ? batch : name == "gpt" ? 64 : 256;
    std::vector<std::vector<double>> step_us(layouts.size());
    std::vector<double> allocs(layouts.size(), 0);
    for (int r = 0; r < rounds; ++r)
      for (std::size_t l = 0; l < layouts.size(); ++l) {
        datarax::train::TrainConfig c;
        c.data_parallel = layouts[l].data;
        c.model_parallel = layouts[l].model;
        c.zero_stage = layouts[l].stage;
        c.steps = steps;
        c.schedule = "constant";
        c.batch_size = global;
        c.precision = precision;
        StepClock clock(static_cast<std::size_t>(steps));
        const auto report = datarax::train::train(model, c, {.observer = &clock});
        datarax::bench::verify(report.steps.size() == static_cast<std::size_t>(steps), "every step ran");
        std::vector<double> us;
        for (std::size_t s = static_cast<std::size_t>(warmup) + 1; s < clock.ends.size(); ++s)
          us.push_back(std::chrono::duration<double, std::micro>(clock.ends[s] - clock.ends[s - 1]).count());
        step_us[l].push_back(datarax::bench::Samples(us).median());
        allocs[l] = static_cast<double>(clock.allocations.back() - clock.allocations[static_cast<std::size_t>(warmup)]) /
                    static_cast<double>(clock.ends.size() - static_cast<std::size_t>(warmup) - 1);
      }
    const bool tokens = name == "gpt";
    char rate[40] = "";
    if (tokens && gpt.dropout > 0) std::snprintf(rate, sizeof rate, ", dropout %g", gpt.dropout);
    std::printf("\n%s (global batch %d%s)\n  %-16s %12s %12s %14s%s\n", name.c_str(), global, rate, "layout", "step (ms)",
                "samples/s", "allocs/step", tokens ? "     tokens/s" : "");
    for (std::size_t l = 0; l < layouts.size(); ++l) {
      const double ms = datarax::bench::Samples(step_us[l]).median() / 1000.0, per_s = global / (ms / 1000.0);
      std::printf("  %-16s %12.2f %12.0f %14.2f", layouts[l].name, ms, per_s, allocs[l]);
      if (tokens) std::printf(" %12.0f", per_s * static_cast<double>(gpt.block_size));
      std::printf("\n");
    }
  }
  return 0;
}
