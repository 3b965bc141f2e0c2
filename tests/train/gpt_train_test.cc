// The GPT (nn/models/gpt.h) through the trainer, the way datarax-train --model gpt runs it: every
// layout of 4 devices gives the 1-device losses and parameters (tensor parallelism split by heads,
// FSDP, both), and a resumed run continues bit for bit. A tiny model on a token stream made from a
// formula, so that it runs in a second.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <tuple>

#include "datarax/data/token_blocks.h"
#include "datarax/device_discovery.h"
#include "datarax/nn/models/gpt.h"
#include "datarax/train/trainer.h"

namespace datarax::train {
namespace {

// 4000 tokens of a 32-token vocabulary with structure to learn (a period and a drift).
std::shared_ptr<const data::TokenStream> stream() {
  auto s = std::make_shared<data::TokenStream>();
  s->vocab_size = 32;
  s->source = "formula";
  for (int i = 0; i < 4000; ++i) s->tokens.push_back((i * 7 + i / 13) % 32);
  return s;
}

struct GptRun {
  std::shared_ptr<const data::TokenStream> tokens = stream();
  data::TokenBlocks train_set{tokens, data::Split::train, 8}, val_set{tokens, data::Split::validation, 8};
  nn::Gpt gpt{nn::GptConfig{.vocab_size = 32, .block_size = 8, .n_layer = 2, .n_head = 2, .n_embd = 16}};
  Model model;
  GptRun() {
    model.module = &gpt;
    model.name = "tiny gpt";
    model.loss = [this](const nn::VarTree& p, const nn::VarTree& b) { return gpt.loss(p, b); };
    model.check_model_axis = [this](int m) { gpt.check_model_axis(m); };
  }
  TrainReport run(const TrainConfig& c, const TrainHooks& h = {}) { return train(model, train_set, val_set, c, h); }
};

TrainConfig config_of(int data, int model, int stage) {
  TrainConfig c;
  c.devices = 4;
  c.data_parallel = data;
  c.model_parallel = model;
  c.zero_stage = stage;
  c.batch_size = 16;
  c.steps = 20;
  c.schedule = "constant";
  c.lr = 1e-2;
  c.shuffle = false;
  return c;
}

// Over elements [from, to) of two tensors.
double relative_l2(const Array& a, const Array& b, std::int64_t from = 0, std::int64_t to = -1) {
  double d = 0, n = 0;
  for (std::int64_t i = from; i < (to < 0 ? a.numel() : to); ++i) {
    const double x = a.data<float>()[static_cast<std::size_t>(i)], y = b.data<float>()[static_cast<std::size_t>(i)];
    d += (x - y) * (x - y);
    n += x * x;
  }
  return std::sqrt(d / std::max(n, 1e-30));
}

TEST(GptTraining, EveryLayoutGivesTheOneDeviceLossesAndParameters) {
  initialize({.num_cpu_devices = 4});
  GptRun g;
  const TrainReport one = g.run(config_of(1, 1, 0));
  ASSERT_EQ(one.steps.size(), 20u);
  EXPECT_LT(one.steps.back().loss, one.steps.front().loss * 0.8);  // it learns
  for (auto [d, m, s] : {std::tuple{2, 1, 1}, {2, 1, 3}, {1, 2, 0}, {2, 2, 3}, {1, 4, 2}}) {
    if (m == 4) continue;  // n_head 2: a model axis of 4 is refused (below)
    const TrainReport r = g.run(config_of(d, m, s));
    ASSERT_EQ(r.steps.size(), one.steps.size());
    double worst = 0;
    for (std::size_t i = 0; i < r.steps.size(); ++i)
      worst = std::max(worst, std::abs(r.steps[i].loss - one.steps[i].loss) / one.steps[i].loss);
    EXPECT_LT(worst, 1e-5) << "data " << d << " model " << m << " stage " << s;
    for (const auto& [key, leaf] : one.params) {
      // The keys' bias (row 1 of c_attn's [3, C] bias) moves no loss — q·(k + b) shifts every
      // score of a query alike, and softmax ignores that — so its gradient is rounding alone,
      // which Adam scales up to whole steps: compared are the q and v rows.
      if (key.ends_with("c_attn/bias")) {
        const std::int64_t C = leaf.shape()[1];
        EXPECT_LT(relative_l2(leaf, r.params.at(key), 0, C), 1e-5) << key << " (q)";
        EXPECT_LT(relative_l2(leaf, r.params.at(key), 2 * C, 3 * C), 1e-5) << key << " (v)";
        continue;
      }
      EXPECT_LT(relative_l2(leaf, r.params.at(key)), 1e-5) << key;
    }
    std::printf("data %d x model %d, ZeRO %d: worst relative loss difference %.3g\n", d, m, s, worst);
  }
  EXPECT_THAT(
      [&] {
        try {
          g.run(config_of(1, 4, 0));
        } catch (const ConfigError& e) {
          return std::string(e.what());
        }
        return std::string();
      }(),
      ::testing::HasSubstr("n_head 2 is not divisible by the model axis of 4 devices"));
}

class Keep final : public CheckpointPolicy {
 public:
  bool due(std::int64_t step) const override { return step == 10; }
  void save(const TrainState& state) override { saved = state; }
  TrainState saved;
};

TEST(GptTraining, ResumeIsBitwiseOnTheSameLayout) {
  initialize({.num_cpu_devices = 4});
  GptRun g;
  const TrainConfig c = config_of(2, 2, 3);
  const TrainReport whole = g.run(c);
  Keep keep;
  g.run(c, {.checkpoint = &keep});
  ASSERT_EQ(keep.saved.step, 10);
  const TrainReport rest = g.run(c, {.resume = &keep.saved});
  ASSERT_EQ(rest.steps.size(), 10u);
  for (const StepMetrics& m : rest.steps) EXPECT_EQ(m.loss, whole.steps[static_cast<std::size_t>(m.step - 1)].loss) << m.step;
  EXPECT_TRUE(bitwise_equal(rest.params, whole.params));
}

}  // namespace
}  // namespace datarax::train
