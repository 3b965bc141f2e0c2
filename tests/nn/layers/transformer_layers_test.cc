// LayerNorm and Embed modules (Flax's names and inits), and a small transformer block made of the
// new ops — embedding, layer_norm, linear, split, transpose, concat, causal_attention, gelu (exact),
// dropout, log_softmax — replayed by value_and_grad with zero allocations and checked in f64.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "datarax/nn/layers/dense.h"
#include "datarax/nn/layers/embed.h"
#include "datarax/nn/layers/layer_norm.h"
#include "datarax/nn/ops/attention.h"
#include "datarax/nn/ops/dropout.h"
#include "datarax/nn/ops/embedding.h"
#include "datarax/nn/ops/reshape.h"
#include "datarax/nn/ops/slice.h"
#include "datarax/nn/ops/softmax.h"
#include "datarax/nn/ops/transpose.h"
#include "datarax/nn/value_and_grad.h"
#include "nn/count_allocations.h"
#include "nn/ops/op_check.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::ints;
using test::random;
using test::values;

constexpr std::int64_t kV = 11, kT = 5, kC = 12, kH = 2, kD = kC / kH;

// ids [B, T] -> Σ log_softmax(logits)[..., 0]-style scalar; every new op on the path.
struct Block : Module {
  Embed wte{*this, "wte", kV, kC};
  LayerNorm ln_1{*this, "ln_1", kC};
  Dense c_attn{*this, "c_attn", kC, 3 * kC};
  Dense c_proj{*this, "c_proj", kC, kC};
  LayerNorm ln_f{*this, "ln_f", kC};

  Var operator()(const VarTree& p, const VarTree& b) const {
    Var x = wte(p, b["ids"]);                                 // [B, T, C]
    const std::int64_t B = x.shape()[0];
    Var qkv = reshape(c_attn(p, ln_1(p, x)), {B, kT, 3, kH, kD});
    auto parts = split(qkv, 2, {1, 1, 1});
    auto head = [&](Var t) { return reshape(t, {B, kT, kH, kD}); };
    // k goes through [B, H, T, D] and back: transpose on the path, same values.
    Var k = transpose(transpose(head(parts[1]), {0, 2, 1, 3}), {0, 2, 1, 3});
    Var a = reshape(causal_attention(head(parts[0]), k, head(parts[2])), {B, kT, kC});
    x = x + dropout(c_proj(p, gelu(a, GeluMode::exact)), 0.25, 17, b["step"], b["first_example"]);
    Var y = concat({ln_f(p, x), x}, -1);                     // [B, T, 2C]
    return mean(log_softmax(y));
  }
};

TEST(TransformerLayers, LayerNormAndEmbedDeclareFlaxNamesAndInits) {
  Module root;
  LayerNorm ln(root, "ln", 4);
  Embed emb(root, "wte", 7, 4);
  const Tree p = root.init(0);
  EXPECT_EQ(p.keys(), (std::vector<std::string>{"ln/bias", "ln/scale", "wte/embedding"}));
  EXPECT_EQ(values(p.at("ln/scale")), std::vector<double>(4, 1.0));
  EXPECT_EQ(values(p.at("ln/bias")), std::vector<double>(4, 0.0));
  EXPECT_EQ(p.at("wte/embedding").shape(), (Shape{7, 4}));
  double sq = 0;
  for (double v : values(p.at("wte/embedding"))) sq += v * v;
  EXPECT_GT(std::sqrt(sq / 28), 0.01);  // normal(0.02): an RMS near 0.02
  EXPECT_LT(std::sqrt(sq / 28), 0.04);
  EXPECT_THAT(error_of([&] { LayerNorm(root, "bad", 0); }), HasSubstr("LayerNorm \"bad\": features 0; valid: >= 1"));
  EXPECT_THAT(error_of([&] { LayerNorm(root, "bad2", 3, {.epsilon = 0}); }), HasSubstr("LayerNorm \"bad2\": epsilon"));
  EXPECT_THAT(error_of([&] { Embed(root, "bad3", 0, 3); }), HasSubstr("Embed \"bad3\": 0 embeddings of 3 features"));
}

Tree block_batch(std::int64_t B, Array step) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(B * kT));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 7 + 3) % kV);
  return Tree{{"ids", ints({B, kT}, ids)}, {"step", step}, {"first_example", Array::scalar<std::int64_t>(8)}};
}

TEST(TransformerLayers, BlockReplaysWithZeroAllocations) {
  Block model;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tree params = model.init(1, dt);
    Array step = Array::scalar<std::int64_t>(0);
    const Tree batch = block_batch(3, step);
    ValueAndGrad vg([&](const VarTree& p, const VarTree& b) { return model(p, b); });
    const long recording = datarax::test::allocation_count();
    const double first = vg(params, batch).loss;
    EXPECT_GT(datarax::test::allocation_count(), recording);  // the counter counts: recording allocates
    step.data<std::int64_t>()[0] = 1;  // a new step: a new dropout mask on the same recording
    const long before = datarax::test::allocation_count();
    const double second = vg(params, batch).loss;
    step.data<std::int64_t>()[0] = 0;
    const double third = vg(params, batch).loss;
    EXPECT_EQ(datarax::test::allocation_count() - before, 0) << to_string(dt);
    EXPECT_EQ(vg.recordings(), 1);
    EXPECT_NE(second, first);  // the mask moved with the step...
    EXPECT_EQ(third, first);   // ...and came back with it
  }
}

TEST(TransformerLayers, BlockGradientsMatchCentralDifferences) {
  Block model;
  const auto r = check_gradients(model, [&](const VarTree& p, const VarTree& b) { return model(p, b); },
                                 block_batch(2, Array::scalar<std::int64_t>(3)), 5,
                                 {.tolerance = test::kGradTol, .max_checks_per_leaf = 24});
  std::printf("%s", r.to_string().c_str());
  EXPECT_TRUE(r.passed);
}

}  // namespace
}  // namespace datarax::nn
