// Gpt (nn/models/gpt.h) on one device: the declared parameters and GPT-2's init, the config's and
// the model axis' refusals, the loss of the batch contract against a naive formula from the
// logits, its gradients against central differences in f64; and broadcast_to, the op the loss
// broadcasts the row mask with.
#include "datarax/nn/models/gpt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "datarax/nn/ops/broadcast.h"
#include "datarax/nn/ops/reshape.h"
#include "datarax/nn/value_and_grad.h"
#include "nn/ops/op_check.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::ints;
using test::random;
using test::values;

const GptConfig kTiny{.vocab_size = 11, .block_size = 6, .n_layer = 2, .n_head = 2, .n_embd = 8};

// b rows of T tokens from a formula; mask 1 except the last row when `pad`; count = global rows.
Tree lm_batch(std::int64_t b, std::int64_t T, std::int64_t V, double count, bool pad, DType dt = DType::f64) {
  std::vector<std::int32_t> in(static_cast<std::size_t>(b * T)), lab(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<std::int32_t>((i * 7 + 3) % static_cast<std::size_t>(V));
    lab[i] = static_cast<std::int32_t>((i * 5 + 1) % static_cast<std::size_t>(V));
  }
  std::vector<double> m(static_cast<std::size_t>(b), 1.0);
  if (pad) m.back() = 0;
  const Array mask = test::array({b}, m, dt);
  return Tree{{"inputs", ints({b, T}, in)}, {"labels", ints({b, T}, lab)}, {"mask", mask},
              {"count", Array::full({}, count, dt)}};
}

TEST(Gpt, DeclaresNanoGptsParametersWithGpt2Init) {
  const Gpt model(kTiny);
  const Tree p = model.init(3);
  EXPECT_EQ(p.size(), 4u + 12u * 2u);
  EXPECT_EQ(p.at("wte/embedding").shape(), (Shape{11, 8}));
  EXPECT_EQ(p.at("wpe/embedding").shape(), (Shape{6, 8}));
  EXPECT_EQ(p.at("h_1/attn/c_attn/kernel").shape(), (Shape{8, 3, 8}));
  EXPECT_EQ(p.at("h_1/attn/c_attn/bias").shape(), (Shape{3, 8}));
  EXPECT_EQ(p.at("h_0/attn/c_proj/kernel").shape(), (Shape{8, 8}));
  EXPECT_EQ(p.at("h_0/mlp/c_fc/kernel").shape(), (Shape{8, 32}));
  EXPECT_EQ(p.at("h_0/mlp/c_proj/kernel").shape(), (Shape{32, 8}));
  EXPECT_EQ(values(p.at("h_0/ln_2/scale")), std::vector<double>(8, 1.0));
  EXPECT_EQ(values(p.at("h_0/mlp/c_fc/bias")), std::vector<double>(32, 0.0));
  EXPECT_EQ(p.at("ln_f/bias").shape(), (Shape{8}));
  // c_proj kernels: normal(0.02 / √(2·n_layer)) = 0.01; the others normal(0.02). A large one to measure.
  const Gpt wide({.vocab_size = 64, .block_size = 4, .n_layer = 2, .n_head = 2, .n_embd = 64});
  const Tree w = wide.init(1);
  auto rms = [&](const char* key) {
    double s = 0;
    for (double v : values(w.at(key))) s += v * v;
    return std::sqrt(s / static_cast<double>(w.at(key).numel()));
  };
  EXPECT_NEAR(rms("h_0/mlp/c_proj/kernel"), 0.01, 0.0005);
  EXPECT_NEAR(rms("h_1/attn/c_proj/kernel"), 0.01, 0.001);
  EXPECT_NEAR(rms("h_0/mlp/c_fc/kernel"), 0.02, 0.001);
  EXPECT_NEAR(rms("wte/embedding"), 0.02, 0.001);
  // The tensor-parallel layout, declared on the parameters.
  const ShardingRules rules = model.sharding_rules();
  std::map<std::string, std::string> spec;
  for (const ParamSpec& s : model.param_specs()) spec[s.key] = s.sharding.to_string();
  EXPECT_EQ(spec["h_0/attn/c_attn/kernel"], (PartitionSpec{std::nullopt, std::nullopt, "model"}.to_string()));
  EXPECT_EQ(spec["h_0/attn/c_attn/bias"], (PartitionSpec{std::nullopt, "model"}.to_string()));
  EXPECT_EQ(spec["h_0/attn/c_proj/kernel"], PartitionSpec{"model"}.to_string());
  EXPECT_EQ(spec["h_0/mlp/c_fc/kernel"], (PartitionSpec{std::nullopt, "model"}.to_string()));
  EXPECT_EQ(spec["h_0/mlp/c_proj/kernel"], PartitionSpec{"model"}.to_string());
  EXPECT_EQ(spec["h_0/mlp/c_proj/bias"], PartitionSpec().to_string());
  EXPECT_EQ(spec["wte/embedding"], PartitionSpec().to_string());
}

TEST(Gpt, RefusesBadConfigsAndModelAxes) {
  EXPECT_THAT(error_of([] { Gpt({.n_head = 3, .n_embd = 8}); }),
              HasSubstr("GptConfig: n_embd = 8; valid: a positive multiple of n_head (3)"));
  EXPECT_THAT(error_of([] { Gpt({.block_size = 0}); }), HasSubstr("GptConfig: block_size = 0; valid: >= 1"));
  EXPECT_THAT(error_of([] { Gpt({.dropout = 1.0}); }), HasSubstr("GptConfig: dropout = 1; valid: 0 <= dropout < 1"));
  EXPECT_THAT(error_of([] { Gpt({.vocab_size = 0}); }), HasSubstr("GptConfig: vocab_size = 0"));
  const Gpt six({.block_size = 4, .n_layer = 1, .n_head = 6, .n_embd = 12});
  for (int m : {1, 2, 3, 6}) EXPECT_NO_THROW(six.check_model_axis(m));
  EXPECT_THAT(error_of([&] { six.check_model_axis(4); }),
              HasSubstr("Gpt: n_head 6 is not divisible by the model axis of 4 devices; valid model-axis sizes: 1, 2, 3, 6"));
  // A context longer than block_size, or tokens of another dtype.
  const Gpt model(kTiny);
  ValueAndGrad vg([&](const VarTree& p, const VarTree& b) { return model.loss(p, b); });
  EXPECT_THAT(error_of([&] { vg(model.init(0), lm_batch(2, 7, 11, 2, false, DType::f32)); }),
              HasSubstr("Gpt: tokens are i32[2, 7]; expected i32 [B, T] with 1 <= T <= block_size (6)"));
}

// The loss of the batch contract equals Σ mask · CE / (count · T), CE from the logits by hand.
TEST(Gpt, LossIsTheMaskedSumOverTheGlobalPositions) {
  const Gpt model(kTiny);
  const Tree params = model.init(5, DType::f64);
  const std::int64_t b = 3, T = 5, V = 11;
  const Tree batch = lm_batch(b, T, V, /*count=*/4, /*pad=*/true);
  ValueAndGrad vg([&](const VarTree& p, const VarTree& bt) {
    expose("logits", model.logits(p, bt["inputs"]));
    return model.loss(p, bt);
  });
  const double loss = vg(params, batch).loss;
  const Array& logits = vg.outputs().at("logits");
  ASSERT_EQ(logits.shape(), (Shape{b, T, V}));
  double want = 0;
  for (std::int64_t r = 0; r < b - 1; ++r)  // the last row is padding
    for (std::int64_t t = 0; t < T; ++t) {
      const double* z = logits.data<double>().data() + (r * T + t) * V;
      double mx = z[0], s = 0;
      for (std::int64_t v = 1; v < V; ++v) mx = std::max(mx, z[v]);
      for (std::int64_t v = 0; v < V; ++v) s += std::exp(z[v] - mx);
      want += mx + std::log(s) - z[batch.at("labels").data<std::int32_t>()[r * T + t]];
    }
  want /= 4.0 * T;
  EXPECT_NEAR(loss, want, 1e-12);
  EXPECT_NEAR(loss * 4 / 2, std::log(11.0), 0.05);  // a fresh GPT predicts nearly uniformly
  // Causal: the logits at position t do not change when a later token changes.
  Tree other = batch;
  Array in = batch.at("inputs").copy();
  in.data<std::int32_t>()[4] = (in.data<std::int32_t>()[4] + 1) % 11;  // row 0, position 4
  other.set("inputs", in);
  ValueAndGrad vg2([&](const VarTree& p, const VarTree& bt) {
    expose("logits", model.logits(p, bt["inputs"]));
    return model.loss(p, bt);
  });
  vg2(params, other);
  const Array& l2 = vg2.outputs().at("logits");
  for (std::int64_t i = 0; i < 4 * V; ++i) EXPECT_EQ(l2.data<double>()[i], logits.data<double>()[i]);
  EXPECT_NE(l2.data<double>()[4 * V], logits.data<double>()[4 * V]);
}

TEST(Gpt, GradientsMatchCentralDifferences) {
  const Gpt model(kTiny);
  const auto r = check_gradients(model, [&](const VarTree& p, const VarTree& b) { return model.loss(p, b); },
                                 lm_batch(3, 5, 11, 4, true), 7, {.tolerance = test::kGradTol, .max_checks_per_leaf = 12});
  std::printf("%s", r.to_string().c_str());
  EXPECT_TRUE(r.passed);
}

TEST(Gpt, DropoutFollowsTheStep) {
  GptConfig c = kTiny;
  c.dropout = 0.2;
  const Gpt model(c);
  const Tree params = model.init(1);
  Tree batch = lm_batch(2, 5, 11, 2, false, DType::f32);
  Array step = Array::scalar<std::int64_t>(0);
  batch.set("step", step);
  batch.set("first_example", Array::scalar<std::int64_t>(0));
  ValueAndGrad train([&](const VarTree& p, const VarTree& b) { return model.loss(p, b); });
  ValueAndGrad eval([&](const VarTree& p, const VarTree& b) { return model.loss(p, b, false); });
  const double a = train(params, batch).loss;
  step.data<std::int64_t>()[0] = 1;
  const double b2 = train(params, batch).loss;
  EXPECT_NE(a, b2);
  const double e = eval(params, batch).loss;
  EXPECT_NE(e, a);
  EXPECT_THAT(error_of([&] { ValueAndGrad v([&](const VarTree& p, const VarTree& b) { return model.loss(p, b); });
                             v(params, lm_batch(2, 5, 11, 2, false, DType::f32)); }),
              HasSubstr("no key \"first_example\""));
}

TEST(BroadcastTo, RepeatsAndSumsItsGradient) {
  Graph g;
  Var x = g.input("x", test::array({3}, {1, 2, 3}));
  EXPECT_EQ(values(broadcast_to(reshape(x, {3, 1}), Shape{3, 2}).value()), (std::vector<double>{1, 1, 2, 2, 3, 3}));
  EXPECT_EQ(values(broadcast_to(x, Shape{2, 3}).value()), (std::vector<double>{1, 2, 3, 1, 2, 3}));
  EXPECT_THAT(error_of([&] { broadcast_to(x, Shape{3, 2}); }),
              HasSubstr("broadcast_to: shape [3] does not broadcast to [3, 2]"));
  const Tree params{{"x", random({2, 1, 3}, 1)}};
  EXPECT_TRUE(test::check_op([](const VarTree& p, const VarTree&) { return broadcast_to(p["x"], Shape{4, 2, 5, 3}); },
                             params).passed);
  EXPECT_TRUE(test::check_op([](const VarTree& p, const VarTree&) { return broadcast_to(p["x"], Shape{2, 1, 3}); },
                             params).passed);
}

}  // namespace
}  // namespace datarax::nn
