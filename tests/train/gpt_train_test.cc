// The GPT (nn/models/gpt.h) through the trainer, the way datarax-train --model gpt runs it: every
// layout of 4 devices gives the 1-device losses and parameters (tensor parallelism split by heads,
// FSDP, both), a resumed run continues bit for bit on its layout and to rounding on another — with
// dropout too, whose masks follow the batch's "step" and "first_example" (train/model.h) and which
// the evaluation leaves out. A tiny model on a token stream made from a formula, so that it runs in
// a second.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "datarax/data/token_blocks.h"
#include "datarax/device_discovery.h"
#include "datarax/nn/models/gpt.h"
#include "datarax/nn/value_and_grad.h"
#include "datarax/train/checkpoint.h"
#include "datarax/train/trainer.h"
#include "io/test_files.h"

namespace datarax::train {
namespace {

// 4000 tokens of a 32-token vocabulary with structure to learn (a period and a drift).
int token(int i) { return (i * 7 + i / 13) % 32; }
std::shared_ptr<const data::TokenStream> stream() {
  auto s = std::make_shared<data::TokenStream>();
  s->vocab_size = 32;
  s->source = "formula";
  for (int i = 0; i < 4000; ++i) s->tokens.push_back(token(i));
  return s;
}

struct GptRun {
  std::shared_ptr<const data::TokenStream> tokens = stream();
  data::TokenBlocks train_set{tokens, data::Split::train, 8}, val_set{tokens, data::Split::validation, 8};
  nn::Gpt gpt;
  Model model;
  // As datarax-train builds it (train/builtin_models.h): with dropout, the evaluation's loss is
  // the one without.
  explicit GptRun(double dropout = 0)
      : gpt(nn::GptConfig{.vocab_size = 32, .block_size = 8, .n_layer = 2, .n_head = 2, .n_embd = 16, .dropout = dropout}) {
    model.module = &gpt;
    model.name = "tiny gpt";
    model.loss = [this](const nn::VarTree& p, const nn::VarTree& b) { return gpt.loss(p, b); };
    if (dropout > 0) model.eval_loss = [this](const nn::VarTree& p, const nn::VarTree& b) { return gpt.loss(p, b, false); };
    model.check_model_axis = [this](int m) { gpt.check_model_axis(m); };
  }
  TrainReport run(const TrainConfig& c, const TrainHooks& h = {}) { return train(model, train_set, val_set, c, h); }
};

TrainConfig config_of(int data, int model, int stage, double lr = 1e-2) {
  TrainConfig c;
  c.devices = 4;
  c.data_parallel = data;
  c.model_parallel = model;
  c.zero_stage = stage;
  c.batch_size = 16;
  c.steps = 20;
  c.schedule = "constant";
  c.lr = lr;
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

struct Difference {
  double worst = 0;
  std::string where;  // the tensor (and rows) of the worst
};

// The largest relative L2 difference of `b`'s tensors from `a`'s (the same keys). The keys' bias
// (row 1 of c_attn's [3, C] bias) moves no loss — q·(k + b) shifts every score of a query alike,
// and softmax ignores that — so its gradient is rounding alone, which Adam scales up to whole
// steps: of that bias, the q and v rows are compared.
Difference parameter_difference(const Tree& a, const Tree& b) {
  Difference out;
  auto note = [&out](double d, const std::string& where) {
    if (d >= out.worst) out = {d, where};
  };
  for (const auto& [key, leaf] : a) {
    if (key.ends_with("c_attn/bias")) {
      const std::int64_t C = leaf.shape()[1];
      note(relative_l2(leaf, b.at(key), 0, C), key + " (q)");
      note(relative_l2(leaf, b.at(key), 2 * C, 3 * C), key + " (v)");
      continue;
    }
    note(relative_l2(leaf, b.at(key)), key);
  }
  return out;
}

double loss_difference(const std::vector<StepMetrics>& a, const std::vector<StepMetrics>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(a[i].loss - b[i].loss) / std::abs(b[i].loss));
  return worst;
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
    const double worst = loss_difference(r.steps, one.steps);
    EXPECT_LT(worst, 1e-5) << "data " << d << " model " << m << " stage " << s;
    const Difference params = parameter_difference(one.params, r.params);
    EXPECT_LT(params.worst, 1e-5) << params.where << ", data " << d << " model " << m << " stage " << s;
    std::printf("data %d x model %d, ZeRO %d: worst relative loss difference %.3g, parameters %.3g (%s)\n", d, m, s,
                worst, params.worst, params.where.c_str());
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

// One epoch (28 steps of 16 blocks), then the evaluation of the validation split.
TrainConfig epoch_config(int data, int model, int stage) {
  TrainConfig c = config_of(data, model, stage);
  c.steps.reset();
  c.epochs = 1;
  return c;
}

TEST(GptTraining, DropoutGivesTheOneDeviceLossesOnEveryLayout) {
  initialize({.num_cpu_devices = 4});
  GptRun g(0.1);
  const TrainReport one = g.run(epoch_config(1, 1, 0));
  ASSERT_EQ(one.steps.size(), 28u);
  ASSERT_EQ(one.epochs.size(), 1u);
  EXPECT_LT(one.steps.back().loss, one.steps.front().loss * 0.8);  // it learns
  for (auto [d, m, s] : {std::tuple{2, 1, 1}, {2, 1, 3}, {1, 2, 0}, {2, 2, 3}}) {
    const TrainReport r = g.run(epoch_config(d, m, s));
    ASSERT_EQ(r.steps.size(), one.steps.size());
    ASSERT_EQ(r.epochs.size(), 1u);
    double worst = 0;
    for (std::size_t i = 0; i < r.steps.size(); ++i)
      worst = std::max(worst, std::abs(r.steps[i].loss - one.steps[i].loss) / one.steps[i].loss);
    EXPECT_LT(worst, 1e-5) << "data " << d << " model " << m << " stage " << s;
    const double eval = std::abs(r.epochs[0].test_loss - one.epochs[0].test_loss) / one.epochs[0].test_loss;
    EXPECT_LT(eval, 1e-5) << "data " << d << " model " << m << " stage " << s;
    std::printf("dropout 0.1, data %d x model %d, ZeRO %d: worst relative loss difference %.3g, validation %.3g\n", d,
                m, s, worst, eval);
  }
}

// Blocks first..first+n-1 of the stream from `begin` (a split's first token), from the formula:
// inputs, labels, mask 1 and "count" `count`, "step" and "first_example" as given.
Tree blocks(int begin, int first, int n, float count, std::int64_t step, std::int64_t first_example) {
  constexpr int T = 8;
  Array inputs = Array::zeros({n, T}, DType::i32), labels = Array::zeros({n, T}, DType::i32);
  for (int j = 0; j < n; ++j)
    for (int t = 0; t < T; ++t) {
      inputs.data<std::int32_t>()[static_cast<std::size_t>(j * T + t)] = token(begin + (first + j) * T + t);
      labels.data<std::int32_t>()[static_cast<std::size_t>(j * T + t)] = token(begin + (first + j) * T + t + 1);
    }
  Array mask = Array::zeros({n}, DType::f32);
  for (float& m : mask.data<float>()) m = 1;
  return Tree{{"inputs", inputs},
              {"labels", labels},
              {"mask", mask},
              {"count", Array::scalar<float>(count)},
              {"step", Array::scalar<std::int64_t>(step)},
              {"first_example", Array::scalar<std::int64_t>(first_example)}};
}

double gpt_loss(const nn::Gpt& gpt, const Tree& params, const Tree& batch, bool training) {
  nn::ValueAndGrad vg([&](const nn::VarTree& p, const nn::VarTree& b) { return gpt.loss(p, b, training); });
  return vg(params, batch).loss;
}

TEST(GptTraining, DropoutIsOnInTrainingAndOffInEvaluation) {
  initialize({.num_cpu_devices = 4});
  GptRun with(0.1), without(0);
  const TrainConfig c = epoch_config(1, 1, 0);
  const TrainReport a = with.run(c), b = without.run(c);
  ASSERT_EQ(a.epochs.size(), 1u);
  // Step 1 from the same initial parameters (the seed's; dropout changes no parameter): the
  // first global batch, blocks 0..15 in data order, is step 1's and its rows are global examples
  // 0..15. The trainer's loss is nn::Gpt's training loss of it, and dropout changes it.
  const Tree init = with.gpt.init(c.seed);
  const Tree first = blocks(0, 0, 16, 16, /*step=*/1, /*first_example=*/0);
  const double dropped = gpt_loss(with.gpt, init, first, true), kept = gpt_loss(with.gpt, init, first, false);
  EXPECT_NEAR(a.steps[0].loss, dropped, 1e-6 * dropped);
  EXPECT_NEAR(b.steps[0].loss, kept, 1e-6 * kept);
  EXPECT_GT(std::abs(a.steps[0].loss - b.steps[0].loss), 1e-4 * kept);
  // The evaluation: the validation split (tokens 3600.., 49 blocks) under the run's final
  // parameters, without dropout — not with it.
  ASSERT_EQ(with.val_set.size(), 49);
  const Tree val = blocks(3600, 0, 49, 49, /*step=*/28, /*first_example=*/0);
  const double eval = gpt_loss(with.gpt, a.params, val, false), eval_dropped = gpt_loss(with.gpt, a.params, val, true);
  EXPECT_NEAR(a.epochs[0].test_loss, eval, 1e-5 * eval);
  EXPECT_GT(std::abs(eval_dropped - eval), 1e-3 * eval);  // dropout would have shown
  std::printf("step 1: %.7f with dropout 0.1, %.7f without; validation %.7f (with dropout it would be %.7f)\n",
              a.steps[0].loss, b.steps[0].loss, a.epochs[0].test_loss, eval_dropped);
}

class Keep final : public CheckpointPolicy {
 public:
  bool due(std::int64_t step) const override { return step == 10; }
  void save(const TrainState& state) override { saved = state; }
  TrainState saved;
};

// With dropout too: the resumed run's batches carry the global step (11 on), so its masks are
// the uninterrupted run's.
TEST(GptTraining, ResumeIsBitwiseOnTheSameLayout) {
  initialize({.num_cpu_devices = 4});
  for (const double dropout : {0.0, 0.1}) {
    GptRun g(dropout);
    const TrainConfig c = config_of(2, 2, 3);
    const TrainReport whole = g.run(c);
    Keep keep;
    g.run(c, {.checkpoint = &keep});
    ASSERT_EQ(keep.saved.step, 10);
    const TrainReport rest = g.run(c, {.resume = &keep.saved});
    ASSERT_EQ(rest.steps.size(), 10u);
    for (const StepMetrics& m : rest.steps)
      EXPECT_EQ(m.loss, whole.steps[static_cast<std::size_t>(m.step - 1)].loss) << "dropout " << dropout << " step " << m.step;
    EXPECT_TRUE(bitwise_equal(rest.params, whole.params)) << "dropout " << dropout;
  }
}

// A state saved after step 10 on one layout, through a checkpoint's files, resumes on another:
// every resumed step's loss and the final parameters are those of the uninterrupted run on the
// layout it resumes on, within 1e-6 relative — a checkpoint holds whole tensors (the parameters
// and Adam's moments), whatever ZeRO stage or model axis wrote them and reads them.
// Adam at lr 1e-4, not the 1e-2 above: the layouts' own runs differ by their reductions' summation
// order, and Adam scales each gradient by its own size, so the zero-initialised biases (LayerNorm's,
// c_attn's v rows) are made of steps that carry the gradients' rounding differences at full
// relative size. Two layouts' 20-step runs differ there by up to 3.3e-6 (relative L2) at 1e-2,
// 8e-7 at 1e-3 and 2.7e-7 at 1e-4 (printed), their losses by 1e-7 or less at all three. At
// 1e-4 the loss still falls (3.459 -> 3.419), and a state with Adam's moments zeroed misses by
// 1e-3 in the losses.
TEST(GptTraining, ResumesOnAnotherLayout) {
  constexpr double kLr = 1e-4;
  initialize({.num_cpu_devices = 4});
  GptRun g;
  struct Layout {
    int data, model, stage;
  };
  auto text = [](const Layout& l) {
    return "data " + std::to_string(l.data) + " x model " + std::to_string(l.model) + " ZeRO " + std::to_string(l.stage);
  };
  for (auto [from, to] : {std::pair<Layout, Layout>{{2, 2, 3}, {1, 1, 0}}, {{1, 1, 0}, {2, 2, 3}}, {{2, 1, 1}, {1, 2, 0}},
                          {{1, 2, 0}, {2, 1, 2}}, {{2, 1, 2}, {2, 2, 1}}}) {
    SCOPED_TRACE(text(from) + " -> " + text(to));
    Keep keep;
    const TrainReport source = g.run(config_of(from.data, from.model, from.stage, kLr), {.checkpoint = &keep});
    ASSERT_EQ(keep.saved.step, 10);
    test::TempDir dir;
    save_checkpoint(dir.file("ckpt-10"), keep.saved);
    const TrainState state = load_checkpoint(dir.file("ckpt-10"));
    const TrainConfig target = config_of(to.data, to.model, to.stage, kLr);
    const TrainReport whole = g.run(target), rest = g.run(target, {.resume = &state});
    ASSERT_EQ(rest.steps.size(), 10u);
    EXPECT_EQ(rest.steps.front().step, 11);
    const double losses = loss_difference(rest.steps, std::vector<StepMetrics>(whole.steps.begin() + 10, whole.steps.end()));
    const Difference params = parameter_difference(whole.params, rest.params);
    EXPECT_LT(losses, 1e-6);
    EXPECT_LT(params.worst, 1e-6) << params.where;
    // The two layouts' own uninterrupted runs: what the resumed run's differences are made of.
    const double layouts = loss_difference(source.steps, whole.steps);
    const Difference layout_params = parameter_difference(whole.params, source.params);
    std::printf("%s -> %s: steps 11..20 worst relative loss difference %.3g, parameters %.3g (%s); the two layouts' "
                "own runs %.3g, parameters %.3g\n",
                text(from).c_str(), text(to).c_str(), losses, params.worst, params.where.c_str(), layouts, layout_params.worst);
  }
}

}  // namespace
}  // namespace datarax::train
