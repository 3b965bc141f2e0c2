// conv2d against naive loops (forward, f64 and f32) and central differences (gradients, f64).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "datarax/nn/graph.h"
#include "datarax/nn/ops/conv.h"
#include "datarax/nn/value_and_grad.h"
#include "nn/conv_reference.h"
#include "nn/gradcheck.h"
#include "nn/op_gradcheck.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::ConvCase;
using test::uniform;

Conv2dOptions options_of(const ConvCase& t) {
  return {.strides = {t.SH, t.SW}, .padding = t.same ? Padding::same : Padding::valid};
}

// Size 1, odd and non-square sizes, strides 1 and 2, SAME and VALID, even and odd kernels, a
// kernel larger than the input (SAME), 1x1 kernels with stride 1 (the direct product) and 2, one
// and several channels in and out.
const std::vector<ConvCase> kCases = {
    {1, 1, 1, 1, 1, 1, 1, 1, 1, true},  {2, 5, 7, 3, 3, 3, 4, 1, 1, true},  {2, 5, 7, 3, 3, 3, 4, 1, 1, false},
    {1, 6, 5, 2, 3, 2, 3, 2, 2, true},  {2, 7, 6, 1, 3, 3, 1, 2, 1, false}, {3, 4, 4, 2, 1, 1, 5, 1, 1, false},
    {1, 4, 5, 3, 1, 1, 2, 2, 2, true},  {1, 3, 3, 2, 5, 5, 2, 1, 1, true},  {1, 9, 9, 1, 4, 4, 2, 3, 2, true},
    {2, 8, 3, 1, 2, 3, 1, 2, 2, false}, {1, 1, 6, 2, 1, 3, 3, 1, 2, true},
};

TEST(Conv2d, ForwardMatchesNaiveLoopsInF64AndF32) {
  // Several chunks of patches in f64 (lines of 32 · 72 · 8 bytes against 1 MiB), one in f32.
  std::vector<ConvCase> cases = kCases;
  cases.push_back({2, 32, 32, 8, 3, 3, 4, 1, 1, true});
  std::uint64_t seed = 1;
  for (const ConvCase& t : cases) {
    SCOPED_TRACE(test::describe(t));
    const bool with_bias = seed % 2 == 1;
    const auto x = uniform(static_cast<std::size_t>(t.N * t.H * t.W * t.C), -1, 1, seed++);
    const auto k = uniform(static_cast<std::size_t>(t.KH * t.KW * t.C * t.O), -1, 1, seed++);
    const auto b = with_bias ? uniform(static_cast<std::size_t>(t.O), -1, 1, seed++) : std::vector<double>{};
    const auto want = test::naive_conv2d(t, x, k, b);
    const Shape xs{t.N, t.H, t.W, t.C}, ks{t.KH, t.KW, t.C, t.O}, bs{t.O};
    const test::Dim h = test::same_or_valid(t.same, t.H, t.KH, t.SH), w = test::same_or_valid(t.same, t.W, t.KW, t.SW);

    Graph g;
    Var x64 = g.input("x", Array::from_values(xs, x)), k64 = g.input("k", Array::from_values(ks, k));
    Var x32 = g.input("x32", Array::from_values(xs, test::to_float(x))),
        k32 = g.input("k32", Array::from_values(ks, test::to_float(k)));
    Var b64 = with_bias ? g.input("b", Array::from_values(bs, b)) : Var();
    Var b32 = with_bias ? g.input("b32", Array::from_values(bs, test::to_float(b))) : Var();
    const auto run = [&](Var xv, Var kv, Var bv, bool relu) {
      Conv2dOptions o = options_of(t);
      o.relu = relu;
      return with_bias ? conv2d(xv, kv, bv, o) : conv2d(xv, kv, o);
    };
    Var y64 = run(x64, k64, b64, false), y32 = run(x32, k32, b32, false), r64 = run(x64, k64, b64, true);
    ASSERT_EQ(y64.shape(), (Shape{t.N, h.out, w.out, t.O}));
    ASSERT_EQ(y32.shape(), y64.shape());
    ASSERT_EQ(r64.shape(), y64.shape());
    const auto got64 = y64.value().data<double>();
    const auto got32 = y32.value().data<float>();
    const auto relu64 = r64.value().data<double>();
    // f64: at most 72 products of numbers in [-1, 1], rounding ~1e-14. f32: 72 · 2^-24 ≈ 5e-6.
    for (std::size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(got64[i], want[i], 1e-12) << i;
      ASSERT_NEAR(got32[i], want[i], 2e-5) << i;
      ASSERT_NEAR(relu64[i], std::max(want[i], 0.0), 1e-12) << i;  // the fused ReLU
    }
  }
}

TEST(Conv2d, SamePaddingPutsTheOddPadAfter) {
  // W = 4, kernel 3, stride 2: out = 2, pad_total = max(1 · 2 + 3 − 4, 0) = 1, all of it after
  // (TensorFlow's rule): windows (x0, x1, x2) and (x2, x3, 0).
  Graph g;
  Var x = g.input("x", Array::from_values(Shape{1, 1, 4, 1}, std::vector<double>{1, 2, 3, 4}));
  Var k = g.input("k", Array::from_values(Shape{1, 3, 1, 1}, std::vector<double>{1, 10, 100}));
  Var y = conv2d(x, k, {.strides = {1, 2}, .padding = Padding::same});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 1}));
  EXPECT_EQ(y.value().data<double>()[0], 1 + 20 + 300);
  EXPECT_EQ(y.value().data<double>()[1], 3 + 40);
  // VALID: only the first window fits.
  Var v = conv2d(x, k, {.strides = {1, 2}, .padding = Padding::valid});
  ASSERT_EQ(v.shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(v.value().data<double>()[0], 321);
}

// check_vjp of conv2d(x, k, b, options) with x, k, b and dout drawn from seed, seed + 1, ...
GradientCheckReport check_conv(const ConvCase& t, const Conv2dOptions& options, std::uint64_t& seed,
                               std::int64_t max_checks = 100000) {
  Tree params;
  params.set("x", test::f64_array({t.N, t.H, t.W, t.C}, seed++));
  params.set("k", test::f64_array({t.KH, t.KW, t.C, t.O}, seed++));
  params.set("b", test::f64_array({t.O}, seed++));
  const test::Dim h = test::same_or_valid(t.same, t.H, t.KH, t.SH), w = test::same_or_valid(t.same, t.W, t.KW, t.SW);
  return test::check_vjp([&](const VarTree& p) { return conv2d(p["x"], p["k"], p["b"], options); }, params,
                         {t.N, h.out, w.out, t.O}, seed++, {.max_checks_per_leaf = max_checks});
}

// The loss Σ conv(x, k) ⊙ dout is linear in each element of x, k and b, so central differences
// have no truncation error: what is left is rounding, ~1e-16 · |loss| / eps ≈ 1e-9 here. The
// default tolerance 1e-6 (relative to max(1, |numeric|)) is far above that and far below the
// error of any wrong index (an O(1) gradient moved or dropped).
TEST(Conv2d, GradientsMatchCentralDifferences) {
  std::uint64_t seed = 100;
  std::vector<ConvCase> cases = kCases;
  cases.push_back({2, 32, 32, 8, 3, 3, 4, 1, 1, true});  // several chunks (checks 64 values of each)
  for (const ConvCase& t : cases) {
    SCOPED_TRACE(test::describe(t));
    const auto report = check_conv(t, options_of(t), seed, t.H == 32 ? 64 : 100000);
    EXPECT_TRUE(report.passed) << report.to_string();
  }
}

// With the ReLU fused: piecewise linear, and with these random values no output is within eps of
// 0, so the differences are again exact up to rounding.
TEST(Conv2d, FusedReluGradientsMatchCentralDifferences) {
  std::uint64_t seed = 500;
  for (const ConvCase& t : {kCases[1], kCases[3], kCases[5], kCases[8]}) {
    SCOPED_TRACE(test::describe(t));
    Conv2dOptions o = options_of(t);
    o.relu = true;
    const auto report = check_conv(t, o, seed);
    EXPECT_TRUE(report.passed) << report.to_string();
  }
}

TEST(Conv2d, GradientsAccumulateWhereTheInputIsUsedTwice) {
  // x feeds two convolutions (with and without bias): its gradient is the sum of both.
  Tree params;
  params.set("x", test::f64_array({2, 5, 4, 3}, 200));
  params.set("k", test::f64_array({3, 2, 3, 2}, 201));
  params.set("k2", test::f64_array({1, 1, 3, 2}, 202));
  params.set("b", test::f64_array({2}, 203));
  const auto report = test::check_vjp(
      [](const VarTree& p) {
        return conv2d(p["x"], p["k"], p["b"]) + conv2d(p["x"], p["k2"], {.padding = Padding::valid});
      },
      params, {2, 5, 4, 2}, 204);
  EXPECT_TRUE(report.passed) << report.to_string();
}

TEST(Conv2d, TheGradientComparisonCatchesAWrongGradient) {
  // The kernel gradient from value_and_grad against numeric_grad of a naive loss; moving one
  // element of the analytic gradient by 1e-4 must fail the same 1e-6 bound.
  const ConvCase t{1, 5, 4, 2, 3, 3, 2, 2, 1, true};
  auto x = uniform(40, -1, 1, 300), k = uniform(36, -1, 1, 301);
  const test::Dim h = test::same_or_valid(true, 5, 3, 2), w = test::same_or_valid(true, 4, 3, 1);
  const auto dout = uniform(static_cast<std::size_t>(h.out * w.out * 2), -1, 1, 302);
  const auto naive_loss = [&] {
    const auto y = test::naive_conv2d(t, x, k, {});
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += y[i] * dout[i];
    return s;
  };
  const auto numeric = test::numeric_grad(k, naive_loss);

  ValueAndGrad vg([&](const VarTree& p, const VarTree& b) {
    return sum(mul(conv2d(b["x"], p["k"], {.strides = {2, 1}}), b["dout"]));
  });
  Tree params, batch;
  params.set("k", Array::from_values(Shape{3, 3, 2, 2}, k));
  batch.set("x", Array::from_values(Shape{1, 5, 4, 2}, x));
  batch.set("dout", Array::from_values(Shape{1, h.out, w.out, 2}, dout));
  const auto grads = vg(params, batch).grads.at("k").data<double>();
  std::vector<double> analytic(grads.begin(), grads.end());
  EXPECT_LT(test::relative_error("conv2d dkernel", analytic, numeric), 1e-6);
  analytic[7] += 1e-4;
  EXPECT_GT(test::relative_error("conv2d dkernel, perturbed", analytic, numeric), 1e-6);
}

TEST(Conv2d, BadArgumentsNameTheOpAndTheValue) {
  Graph g;
  Var x = g.input("x", Array::zeros({2, 5, 5, 3}, DType::f32));
  Var k = g.input("k", Array::zeros({3, 3, 3, 4}, DType::f32));
  Var k2 = g.input("k2", Array::zeros({3, 3, 2, 4}, DType::f32));
  Var big = g.input("big", Array::zeros({6, 2, 3, 4}, DType::f32));
  Var flat = g.input("flat", Array::zeros({5, 5, 3}, DType::f32));
  Var x64 = g.input("x64", Array::zeros({2, 5, 5, 3}, DType::f64));
  Var b = g.input("b", Array::zeros({5}, DType::f32));
  Var empty = g.input("empty", Array::zeros({0, 3, 3, 4}, DType::f32));
  EXPECT_THAT(error_of([&] { conv2d(flat, k); }),
              HasSubstr("conv2d: the input has shape [5, 5, 3]; it needs 4 dimensions [N, H, W, C] (NHWC)"));
  EXPECT_THAT(error_of([&] { conv2d(x, flat); }),
              HasSubstr("conv2d: the kernel has shape [5, 5, 3]; it needs 4 dimensions [KH, KW, C_in, C_out] (HWIO)"));
  EXPECT_THAT(error_of([&] { conv2d(x, empty); }),
              HasSubstr("conv2d: the kernel has shape [0, 3, 3, 4]; KH, KW, C_in and C_out must be >= 1"));
  EXPECT_THAT(error_of([&] { conv2d(x, k2); }),
              HasSubstr("conv2d: the input has 3 channels (shape [2, 5, 5, 3]) but the kernel expects C_in = 2"));
  EXPECT_THAT(error_of([&] { conv2d(x, k, {.strides = {0, 1}}); }),
              HasSubstr("conv2d: strides (0, 1); each stride must be >= 1"));
  EXPECT_THAT(error_of([&] { conv2d(x, big, {.padding = Padding::valid}); }),
              HasSubstr("conv2d: VALID padding with a kernel of (6, 2) on an input of (5, 5) (H, W): the kernel "
                        "must fit, each extent <= the input's"));
  EXPECT_THAT(error_of([&] { conv2d(x, k, b); }),
              HasSubstr("conv2d: the bias has shape [5]; expected [4] (C_out)"));
  EXPECT_THAT(error_of([&] { conv2d(x64, k); }), HasSubstr("conv2d: operand 1 has dtype f32, operand 0 f64"));
  EXPECT_THAT(error_of([&] { conv2d(empty, k, {.padding = Padding::valid}); }),
              HasSubstr("conv2d: the input has 4 channels (shape [0, 3, 3, 4])"));
  // SAME accepts a kernel larger than the input.
  EXPECT_EQ(conv2d(x, big).shape(), (Shape{2, 5, 5, 4}));
  EXPECT_EQ(to_string(Padding::same), "SAME");
  EXPECT_EQ(to_string(Padding::valid), "VALID");
}

TEST(Conv2d, ReplaysOnNewValuesAndAnEmptyBatch) {
  // Replays overwrite the output (forward) from the new x; an empty batch gives an empty output.
  const ConvCase t{2, 5, 6, 2, 3, 3, 3, 2, 2, true};
  ValueAndGrad vg([&](const VarTree& p, const VarTree& b) { return sum(conv2d(b["x"], p["k"], options_of(t))); });
  const auto k = uniform(54, -1, 1, 400);
  Tree params, batch;
  params.set("k", Array::from_values(Shape{3, 3, 2, 3}, k));
  for (std::uint64_t seed : {401, 402, 403}) {
    const auto x = uniform(120, -1, 1, seed);
    batch.set("x", Array::from_values(Shape{2, 5, 6, 2}, x));
    double want = 0;
    for (double v : test::naive_conv2d(t, x, k, {})) want += v;
    EXPECT_NEAR(vg.value(params, batch), want, 1e-12);
  }
  EXPECT_EQ(vg.recordings(), 1);
  Graph g;
  Var y = conv2d(g.input("x", Array::zeros({0, 5, 6, 2}, DType::f64)), g.input("k", Array::from_values(Shape{3, 3, 2, 3}, k)));
  EXPECT_EQ(y.shape(), (Shape{0, 5, 6, 3}));
}

}  // namespace
}  // namespace datarax::nn
