// The Conv layer and the Cnn model: parameter keys and shapes (Flax's), the forward against naive
// loops, gradients end to end through softmax cross-entropy, and no allocation per replayed step.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "nn/count_allocations.h"
#include "datarax/nn/check_gradients.h"
#include "datarax/nn/layers/conv.h"
#include "datarax/nn/models/cnn.h"
#include "datarax/nn/ops/cross_entropy.h"
#include "datarax/nn/value_and_grad.h"
#include "nn/conv_reference.h"
#include "nn/gradcheck.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using datarax::test::error_of;
using test::uniform;

// A small CNN: odd width (6 -> 3 -> 1 after the pools), 2 input channels.
const CnnConfig kTiny{.height = 8, .width = 6, .channels = 2, .conv_0_features = 3, .conv_1_features = 4,
                      .hidden = 5, .classes = 3};

std::vector<std::string> keys_of(const Tree& t) {
  std::vector<std::string> keys;
  for (const auto& kv : t) keys.push_back(kv.first);
  return keys;
}

TEST(Cnn, ParameterKeysAndShapesAreFlaxs) {
  Cnn model;
  const Tree p = model.init(0);
  EXPECT_THAT(keys_of(p), ElementsAre("conv_0/bias", "conv_0/kernel", "conv_1/bias", "conv_1/kernel", "dense_0/bias",
                                      "dense_0/kernel", "dense_1/bias", "dense_1/kernel"));
  EXPECT_EQ(p.at("conv_0/kernel").shape(), (Shape{3, 3, 1, 32}));
  EXPECT_EQ(p.at("conv_0/bias").shape(), (Shape{32}));
  EXPECT_EQ(p.at("conv_1/kernel").shape(), (Shape{3, 3, 32, 64}));
  EXPECT_EQ(p.at("conv_1/bias").shape(), (Shape{64}));
  EXPECT_EQ(p.at("dense_0/kernel").shape(), (Shape{3136, 128}));
  EXPECT_EQ(p.at("dense_0/bias").shape(), (Shape{128}));
  EXPECT_EQ(p.at("dense_1/kernel").shape(), (Shape{128, 10}));
  EXPECT_EQ(p.at("dense_1/bias").shape(), (Shape{10}));
  EXPECT_EQ(model.flat_features(), 3136);
  EXPECT_EQ(model.num_params(), 320 + 18496 + 401536 + 1290);
  // lecun_normal over fan_in = H · W · C_in (9 for conv_0): stddev 1/3, biases zero.
  double sq = 0;
  for (float v : p.at("conv_0/kernel").data<float>()) sq += static_cast<double>(v) * v;
  EXPECT_NEAR(std::sqrt(sq / 288), 1.0 / 3, 0.1);
  for (float v : p.at("conv_1/bias").data<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(Conv, DeclaresHwioKernelAndBiasAndChecksItsArguments) {
  struct Model : Module {
    Conv conv{*this, "conv", 3, 5, {2, 4}, {.strides = {2, 1}, .padding = Padding::valid}};
    Conv plain{*this, "plain", 5, 2, {1, 1}, {.use_bias = false}};
  } model;
  const Tree p = model.init(1, DType::f64);
  EXPECT_THAT(keys_of(p), ElementsAre("conv/bias", "conv/kernel", "plain/kernel"));
  EXPECT_EQ(p.at("conv/kernel").shape(), (Shape{2, 4, 3, 5}));
  Graph g;
  VarTree vars;
  for (const auto& [key, a] : p) vars.set(key, g.input(key, a));
  Var y = model.plain(vars, model.conv(vars, g.input("x", Array::zeros({1, 7, 9, 3}, DType::f64))));
  EXPECT_EQ(y.shape(), (Shape{1, 3, 6, 2}));  // VALID stride (2, 1): (7 − 2) / 2 + 1, 9 − 4 + 1

  struct Bad : Module {
    explicit Bad(int which) {
      if (which == 0) Conv(*this, "c", 0, 4, {3, 3});
      if (which == 1) Conv(*this, "c", 1, 4, {3, 0});
      if (which == 2) Conv(*this, "c", 1, 4, {3, 3}, {.strides = {1, 0}});
    }
  };
  EXPECT_THAT(error_of([] { Bad b(0); }), HasSubstr("Conv \"c\": features 0 -> 4; both must be >= 1"));
  EXPECT_THAT(error_of([] { Bad b(1); }), HasSubstr("Conv \"c\": kernel size (3, 0); each extent must be >= 1"));
  EXPECT_THAT(error_of([] { Bad b(2); }), HasSubstr("Conv \"c\": strides (1, 0); each stride must be >= 1"));
  EXPECT_THAT(error_of([] { Cnn m({.height = 3}); }), HasSubstr("Cnn: height = 3; must be >= 4 (two 2x2 pools)"));
  EXPECT_THAT(error_of([] { Cnn m({.classes = 0}); }), HasSubstr("Cnn: classes = 0; must be >= 1"));
}

// The tiny CNN's parameters with nonzero biases (init gives zeros), in f64.
Tree tiny_params(const Cnn& model) {
  Tree p = model.init(3, DType::f64);
  std::uint64_t seed = 10;
  for (auto& [key, a] : p)
    if (key.ends_with("bias"))
      for (double& v : a.data<double>()) v = uniform(1, -0.5, 0.5, seed++)[0];
  return p;
}

std::vector<double> values(const Tree& t, const char* key) {
  const auto s = t.at(key).data<double>();
  return {s.begin(), s.end()};
}

TEST(Cnn, ForwardMatchesNaiveLoops) {
  const Cnn model(kTiny);
  const Tree p = tiny_params(model);
  const std::int64_t N = 3, H = 8, W = 6;
  const auto images = uniform(static_cast<std::size_t>(N * H * W * 2), 0, 1, 20);
  const auto relu = [](std::vector<double> v) {
    for (double& x : v) x = std::max(x, 0.0);
    return v;
  };
  // conv SAME 3x3 + ReLU + max pool 2x2/2, twice; flatten (h, w, c); dense + ReLU; dense.
  auto a = relu(test::naive_conv2d({N, H, W, 2, 3, 3, 3, 1, 1, true}, images, values(p, "conv_0/kernel"),
                                   values(p, "conv_0/bias")));
  a = test::naive_pool({N, H, W, 3, 2, 2, 2, 2, false}, a, true);
  a = relu(test::naive_conv2d({N, 4, 3, 3, 3, 3, 4, 1, 1, true}, a, values(p, "conv_1/kernel"), values(p, "conv_1/bias")));
  a = test::naive_pool({N, 4, 3, 4, 2, 2, 2, 2, false}, a, true);  // [N, 2, 1, 4] = [N, 8]
  const auto dense = [&](const std::vector<double>& x, const char* layer, std::int64_t in, std::int64_t out) {
    const auto k = values(p, (std::string(layer) + "/kernel").c_str()), b = values(p, (std::string(layer) + "/bias").c_str());
    std::vector<double> y(static_cast<std::size_t>(N * out));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t o = 0; o < out; ++o) {
        double s = b[static_cast<std::size_t>(o)];
        for (std::int64_t i = 0; i < in; ++i) s += x[static_cast<std::size_t>(n * in + i)] * k[static_cast<std::size_t>(i * out + o)];
        y[static_cast<std::size_t>(n * out + o)] = s;
      }
    return y;
  };
  ASSERT_EQ(model.flat_features(), 8);
  const auto want = dense(relu(dense(a, "dense_0", 8, 5)), "dense_1", 5, 3);

  Graph g;
  VarTree vars;
  for (const auto& [key, arr] : p) vars.set(key, g.input(key, arr));
  Var logits = model(vars, g.input("images", Array::from_values(Shape{N, H, W, 2}, images)));
  ASSERT_EQ(logits.shape(), (Shape{N, 3}));
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(logits.value().data<double>()[i], want[i], 1e-12) << i;
}

Tree tiny_batch(std::int64_t N, DType dtype) {
  Tree b;
  b.set("image", Array::from_values(Shape{N, 8, 6, 2}, uniform(static_cast<std::size_t>(N * 96), 0, 1, 30)).astype(dtype));
  std::vector<std::int32_t> labels(static_cast<std::size_t>(N));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);
  b.set("label", Array::from_values(Shape{N}, std::move(labels)));
  return b;
}

// Softmax cross-entropy is smooth, so central differences with eps 1e-6 err by ~eps² · f''' plus
// rounding ~1e-16 / eps = 1e-10; relu and max pool are piecewise linear and, with these random
// values, no pre-activation or window is within eps of a kink. 1e-6 relative to max(1, |numeric|).
TEST(Cnn, GradientsMatchCentralDifferencesThroughCrossEntropy) {
  const Cnn model(kTiny);
  const LossFn loss = [&](const VarTree& p, const VarTree& b) {
    return softmax_cross_entropy(model(p, b["image"]), b["label"]);
  };
  const auto report = check_gradients(loss, tiny_params(model), tiny_batch(4, DType::f64), {.max_checks_per_leaf = 1000});
  std::printf("%s", report.to_string().c_str());
  EXPECT_TRUE(report.passed) << report.to_string();
  for (const auto& leaf : report.leaves) EXPECT_GT(leaf.max_abs_numeric, 1e-4) << leaf.key;  // not vacuous
}

TEST(Cnn, ReplaysAllocateNothing) {
  const Cnn model({.height = 12, .width = 12, .channels = 1, .conv_0_features = 4, .conv_1_features = 8,
                   .hidden = 16, .classes = 10});
  ValueAndGrad vg([&](const VarTree& p, const VarTree& b) {
    return softmax_cross_entropy(model(p, b["image"]), b["label"]);
  });
  const Tree params = model.init(5);
  Tree batch;
  batch.set("image", Array::from_values(Shape{8, 12, 12, 1}, test::to_float(uniform(8 * 144, 0, 1, 40))));
  batch.set("label", Array::from_values(Shape{8}, std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  const double first = vg(params, batch).loss;
  const long before = datarax::test::allocation_count();
  const double second = vg(params, batch).loss;
  const double third = vg(params, batch).loss;
  EXPECT_EQ(datarax::test::allocation_count() - before, 0);
  EXPECT_EQ(vg.recordings(), 1);
  EXPECT_EQ(second, first);
  EXPECT_EQ(third, first);
  EXPECT_TRUE(std::isfinite(first));
}

}  // namespace
}  // namespace datarax::nn
