// conv2d with a fused max pool (Conv2dOptions::max_pool) against the two ops it stands for,
// max_pool(conv2d(...)) (each tested against naive loops in conv_test.cc and pool_test.cc): the
// same values and the same gradients, in f64 and f32, on the im2col path and the direct one (one
// input channel, 3x3, f32), with ties, leftover rows and columns, several chunks and non-finite
// inputs; the fused op's own gradients against central differences; its arguments checked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "datarax/nn/graph.h"
#include "datarax/nn/layers/conv.h"
#include "datarax/nn/ops/conv.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/pool.h"
#include "datarax/nn/ops/reduce.h"
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

struct PoolCase {
  ConvCase conv;
  std::int64_t PH, PW;
};

std::string describe(const PoolCase& t) {
  return test::describe(t.conv) + " pool " + std::to_string(t.PH) + "x" + std::to_string(t.PW);
}

// Image sizes the pool divides and sizes it leaves rows or columns of (VALID drops them), 2x2,
// 3x2, 1x2 and 2x1 windows, SAME and VALID convolutions with strides 1 and 2; one and several
// input channels (C = 1 with a 3x3 kernel takes the direct path in f32 on AVX-512); output
// channels across the 16- and 32-lane blocks.
const std::vector<PoolCase> kCases = {
    {{2, 8, 8, 1, 3, 3, 32, 1, 1, true}, 2, 2},   {{2, 7, 9, 1, 3, 3, 17, 1, 1, true}, 2, 2},
    {{1, 9, 8, 1, 3, 3, 40, 1, 1, false}, 3, 2},  {{2, 6, 7, 3, 3, 3, 5, 1, 1, true}, 2, 2},
    {{1, 9, 9, 2, 3, 2, 33, 2, 1, true}, 2, 3},   {{2, 5, 6, 4, 1, 1, 8, 1, 1, true}, 1, 2},
    {{1, 6, 5, 2, 2, 2, 16, 1, 1, false}, 2, 1},  {{3, 4, 4, 1, 3, 3, 64, 1, 1, true}, 4, 4},
};

struct Result {
  std::vector<double> y, dx, dk, db;
};

template <class T>
std::vector<double> to_double(std::span<const T> v) {
  return {v.begin(), v.end()};
}

// Equal element for element where tol is 0 (and where want is infinite), else within
// tol · (1 + |want|); NaN where want is NaN.
void expect_same(const char* what, const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(got[i])) << what << " " << i << ": " << got[i];
      continue;
    }
    if (tol == 0 || std::isinf(want[i]))
      ASSERT_EQ(got[i], want[i]) << what << " " << i;
    else
      ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << what << " " << i;
  }
}

// y and the gradients of Σ y ⊙ dout for x, k and b, with the pool fused or as a separate op.
template <class T>
Result run(const PoolCase& t, bool relu, bool fused, const std::vector<double>& x, const std::vector<double>& k,
           const std::vector<double>& b, const std::vector<double>& dout, bool x_param = true) {
  const ConvCase& c = t.conv;
  const auto cast = [](const std::vector<double>& v) {
    if constexpr (std::is_same_v<T, float>)
      return test::to_float(v);
    else
      return v;
  };
  ValueAndGrad vg([&](const VarTree& p, const VarTree& d) {
    Conv2dOptions o{.strides = {c.SH, c.SW}, .padding = c.same ? Padding::same : Padding::valid, .relu = relu};
    if (fused) o.max_pool = {t.PH, t.PW};
    const Var xv = x_param ? p["x"] : d["x"];
    Var y = conv2d(xv, p["k"], p["b"], o);
    if (!fused) y = max_pool(y, {t.PH, t.PW}, {t.PH, t.PW});
    expose("y", y);
    return sum(mul(y, d["dout"]));
  });
  const test::Dim h = test::same_or_valid(c.same, c.H, c.KH, c.SH), w = test::same_or_valid(c.same, c.W, c.KW, c.SW);
  Tree params, data;
  (x_param ? params : data).set("x", Array::from_values(Shape{c.N, c.H, c.W, c.C}, cast(x)));
  params.set("k", Array::from_values(Shape{c.KH, c.KW, c.C, c.O}, cast(k)));
  params.set("b", Array::from_values(Shape{c.O}, cast(b)));
  data.set("dout", Array::from_values(Shape{c.N, h.out / t.PH, w.out / t.PW, c.O}, cast(dout)));
  Result r;
  for (int replay = 0; replay < 2; ++replay) {  // recorded, then replayed: the same results
    const auto g = vg(params, data);
    Result now{to_double(vg.outputs().at("y").data<T>()), x_param ? to_double(g.grads.at("x").data<T>()) : std::vector<double>{},
               to_double(g.grads.at("k").data<T>()), to_double(g.grads.at("b").data<T>())};
    if (replay == 1) {
      expect_same("y replayed", now.y, r.y, 0);
      expect_same("dx replayed", now.dx, r.dx, 0);
      expect_same("dk replayed", now.dk, r.dk, 0);
      expect_same("db replayed", now.db, r.db, 0);
    }
    r = std::move(now);
  }
  return r;
}

// The output is the same bits (the pool picks values; it adds nothing), and so is dx (the same
// terms in the same order). dk's and db's sums run in another order (by chunk of pooled rows, or
// pooled position by pooled position on the direct path), so they match to rounding: ~1e-16 per
// term in f64, ~1e-7 in f32, times the terms (<= 200 here).
// divisible_only: only the cases whose pool leaves no row or column of the convolution out.
template <class T>
void expect_fused_equals_composed(const std::vector<double>& x_values, std::uint64_t& seed, bool divisible_only = false) {
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  for (const PoolCase& t : kCases)
    for (const bool relu : {false, true})
      for (const bool x_param : {false, true}) {
        SCOPED_TRACE(describe(t) + (relu ? " relu" : "") + (x_param ? " dx" : ""));
        const ConvCase& c = t.conv;
        const test::Dim h = test::same_or_valid(c.same, c.H, c.KH, c.SH), w = test::same_or_valid(c.same, c.W, c.KW, c.SW);
        if (divisible_only && (h.out % t.PH != 0 || w.out % t.PW != 0)) continue;
        const auto n = static_cast<std::size_t>(c.N * c.H * c.W * c.C);
        std::vector<double> x = x_values.empty() ? test::uniform(n, -1, 1, seed++) : x_values;
        x.resize(n, 0.5);
        const auto k = test::uniform(static_cast<std::size_t>(c.KH * c.KW * c.C * c.O), -1, 1, seed++);
        const auto b = test::uniform(static_cast<std::size_t>(c.O), -0.2, 0.2, seed++);
        const auto dout = test::uniform(static_cast<std::size_t>(c.N * (h.out / t.PH) * (w.out / t.PW) * c.O), -1, 1, seed++);
        const Result fused = run<T>(t, relu, true, x, k, b, dout, x_param);
        const Result composed = run<T>(t, relu, false, x, k, b, dout, x_param);
        expect_same("y", fused.y, composed.y, 0);
        expect_same("dx", fused.dx, composed.dx, 0);
        expect_same("db", fused.db, composed.db, tol);
        expect_same("dk", fused.dk, composed.dk, tol);
      }
}

TEST(Conv2dMaxPool, FusedEqualsMaxPoolOfConvInF64AndF32) {
  std::uint64_t seed = 2000;
  expect_fused_equals_composed<double>({}, seed);
  expect_fused_equals_composed<float>({}, seed);
}

// Exact ties inside windows: where a window's receptive field is all zeros (the bottom half of
// every image here), each of its elements is exactly the bias, so a positive bias makes PH · PW
// equal maxima and the gradient must go to the first, as max_pool's (dx, compared bit for bit,
// shows where it went); small integers in the top half make more ties, and windows of equal
// negative values that the ReLU turns into zeros.
TEST(Conv2dMaxPool, TiesGiveTheFirstMaximumTheGradientAsMaxPool) {
  std::uint64_t seed = 3000;
  std::vector<double> x(3 * 9 * 9 * 4);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const bool top = (i / 4) % 81 < 36;  // rows 0-3 of each 9x9 image (for C = 4; lower for fewer)
    x[i] = top ? static_cast<double>(static_cast<int>(i * 7 % 5) - 2) : 0.0;
  }
  expect_fused_equals_composed<double>(x, seed);
  expect_fused_equals_composed<float>(x, seed);
}

// A NaN or an infinity in the input: the fused op's outputs and gradients are those of the two
// ops, NaN where theirs are — where the pool covers the whole convolution. Rows and columns it
// leaves out do not reach the output, and the fused op may not compute them at all: a NaN read
// only there leaves its dkernel finite, where the two ops' gets 0 · NaN (next test).
TEST(Conv2dMaxPool, NonFiniteInputsGiveWhatTheTwoOpsGive) {
  std::uint64_t seed = 4000;
  std::vector<double> x = test::uniform(3 * 9 * 9 * 4, -1, 1, 4001);
  x[5] = std::numeric_limits<double>::quiet_NaN();
  x[40] = std::numeric_limits<double>::infinity();
  x[77] = -std::numeric_limits<double>::infinity();
  expect_fused_equals_composed<float>(x, seed, true);
}

TEST(Conv2dMaxPool, ANanOnlyInRowsThePoolLeavesOutStaysOut) {
  // VALID 3x3 on 7 rows: 5 output rows, pooled by 2 into 2; output row 4 reads input rows 4-6,
  // and only it reads row 6.
  const PoolCase t{{1, 7, 6, 1, 3, 3, 16, 1, 1, false}, 2, 2};
  for (const bool direct : {true, false}) {  // C = 1 in f32 (direct on AVX-512), then f64 (im2col)
    std::vector<double> x = test::uniform(42, -1, 1, 4100);
    x[6 * 6 + 2] = std::numeric_limits<double>::quiet_NaN();
    const auto k = test::uniform(144, -1, 1, 4101), b = test::uniform(16, -1, 1, 4102);
    const auto dout = test::uniform(2 * 2 * 16, -1, 1, 4103);
    const Result r = direct ? run<float>(t, true, true, x, k, b, dout, false) : run<double>(t, true, true, x, k, b, dout, false);
    for (double v : r.y) ASSERT_TRUE(std::isfinite(v));
    for (double v : r.dk) ASSERT_TRUE(std::isfinite(v));
    for (double v : r.db) ASSERT_TRUE(std::isfinite(v));
  }
}

// Several chunks of output rows (1 MiB each): on the im2col path 27 x 28 x 8 -> 64 channels makes
// 34 pooled lines a chunk of 16 · 13 (7 chunks, ending inside images, the last one partial, the
// odd last row left out); one channel (the direct forward, the im2col backward for dx) 114 of 260.
TEST(Conv2dMaxPool, ManyChunksMatchTheTwoOps) {
  for (const PoolCase& t : {PoolCase{{20, 27, 28, 1, 3, 3, 32, 1, 1, true}, 2, 2},
                            PoolCase{{16, 27, 28, 8, 3, 3, 64, 1, 1, true}, 2, 2}}) {
    SCOPED_TRACE(describe(t));
    const ConvCase& c = t.conv;
    const auto x = test::uniform(static_cast<std::size_t>(c.N * c.H * c.W * c.C), -1, 1, 5000);
    const auto k = test::uniform(static_cast<std::size_t>(9 * c.C * c.O), -1, 1, 5001);
    const auto b = test::uniform(static_cast<std::size_t>(c.O), -0.2, 0.2, 5002);
    const auto dout = test::uniform(static_cast<std::size_t>(c.N * (c.H / 2) * (c.W / 2) * c.O), -1, 1, 5003);
    const Result fused = run<float>(t, true, true, x, k, b, dout), composed = run<float>(t, true, false, x, k, b, dout);
    const double terms = static_cast<double>(c.N * c.H * c.W);  // per element of dk and db, up to 15,120
    expect_same("y", fused.y, composed.y, 0);
    expect_same("dx", fused.dx, composed.dx, 0);
    expect_same("db", fused.db, composed.db, 1e-7 * terms);
    expect_same("dk", fused.dk, composed.dk, 1e-7 * terms);
  }
}

// Gradients that add to others: one kernel and bias in two pooled convolutions (one op writes
// dk and db, the other adds), and x used by a pooled convolution and by a product of its own (dx
// written by one, added to by the other), on both paths, f64 and f32; against the same with the
// pools apart.
TEST(Conv2dMaxPool, GradientsAddWhereTheOperandsAreUsedTwice) {
  for (const std::int64_t C : {1, 3}) {
    SCOPED_TRACE("C = " + std::to_string(C));
    Tree params, data;
    params.set("x", test::f64_array({2, 7, 8, C}, 8000));
    params.set("k", test::f64_array({3, 3, C, 20}, 8001));
    params.set("b", test::f64_array({20}, 8002));
    data.set("x2", test::f64_array({2, 7, 8, C}, 8003));
    data.set("d1", test::f64_array({2, 3, 4, 20}, 8004));
    data.set("d2", test::f64_array({2, 3, 4, 20}, 8005));
    data.set("e", test::f64_array({2, 7, 8, C}, 8006));
    const auto to_f32 = [](Tree t) {
      for (auto& [key, a] : t) a = a.astype(DType::f32);
      return t;
    };
    for (const bool f32 : {false, true}) {
      const auto grads = [&](bool fused) {
        ValueAndGrad vg([&](const VarTree& p, const VarTree& d) {
          const auto pooled = [&](Var x) {
            if (fused) return conv2d(x, p["k"], p["b"], {.relu = true, .max_pool = {2, 2}});
            return max_pool(conv2d(x, p["k"], p["b"], {.relu = true}), {2, 2}, {2, 2});
          };
          return sum(mul(pooled(p["x"]), d["d1"])) + sum(mul(pooled(d["x2"]), d["d2"])) + sum(mul(p["x"], d["e"]));
        });
        const auto r = f32 ? vg(to_f32(params), to_f32(data)) : vg(params, data);
        std::map<std::string, std::vector<double>> out;
        for (const char* key : {"x", "k", "b"})
          out[key] = f32 ? to_double(r.grads.at(key).data<float>()) : to_double(r.grads.at(key).data<double>());
        return out;
      };
      auto fused = grads(true), composed = grads(false);
      const double tol = f32 ? 1e-5 : 1e-12;
      expect_same("dx", fused["x"], composed["x"], tol);
      expect_same("dk", fused["k"], composed["k"], tol);
      expect_same("db", fused["b"], composed["b"], tol);
    }
  }
}

// An empty batch: an empty output, and zero gradients for the kernel and the bias (written: no
// chunk runs), on both paths.
TEST(Conv2dMaxPool, AnEmptyBatchGivesZeroKernelGradients) {
  for (const std::int64_t C : {1, 3}) {
    ValueAndGrad vg([](const VarTree& p, const VarTree& d) {
      return sum(conv2d(d["x"], p["k"], p["b"], {.relu = true, .max_pool = {2, 2}}));
    });
    Tree params, data;
    params.set("k", Array::from_values(Shape{3, 3, C, 4},
                                       test::to_float(test::uniform(static_cast<std::size_t>(36 * C), -1, 1, 8100))));
    params.set("b", Array::from_values(Shape{4}, std::vector<float>{1, 2, 3, 4}));
    data.set("x", Array::zeros({0, 6, 6, C}, DType::f32));
    const auto r = vg(params, data);
    EXPECT_EQ(r.loss, 0);
    for (float v : r.grads.at("k").data<float>()) EXPECT_EQ(v, 0.0f);
    for (float v : r.grads.at("b").data<float>()) EXPECT_EQ(v, 0.0f);
  }
}

// The fused op's own gradients against central differences in f64: piecewise linear, and with
// these random values no two window elements are within eps of each other and no maximum within
// eps of 0, so the differences are exact up to rounding.
TEST(Conv2dMaxPool, GradientsMatchCentralDifferences) {
  std::uint64_t seed = 6000;
  for (const PoolCase& t : {kCases[1], kCases[3], kCases[4], kCases[6]})
    for (const bool relu : {false, true}) {
      SCOPED_TRACE(describe(t) + (relu ? " relu" : ""));
      const ConvCase& c = t.conv;
      Tree params;
      params.set("x", test::f64_array({c.N, c.H, c.W, c.C}, seed++));
      params.set("k", test::f64_array({c.KH, c.KW, c.C, c.O}, seed++));
      params.set("b", test::f64_array({c.O}, seed++));
      const test::Dim h = test::same_or_valid(c.same, c.H, c.KH, c.SH), w = test::same_or_valid(c.same, c.W, c.KW, c.SW);
      const Conv2dOptions o{.strides = {c.SH, c.SW}, .padding = c.same ? Padding::same : Padding::valid, .relu = relu,
                            .max_pool = {t.PH, t.PW}};
      const auto report = test::check_vjp([&](const VarTree& p) { return conv2d(p["x"], p["k"], p["b"], o); }, params,
                                          {c.N, h.out / t.PH, w.out / t.PW, c.O}, seed++);
      EXPECT_TRUE(report.passed) << report.to_string();
    }
}

TEST(Conv2dMaxPool, BadPoolsNameTheOpAndTheValue) {
  Graph g;
  Var x = g.input("x", Array::zeros({2, 5, 5, 3}, DType::f32));
  Var k = g.input("k", Array::zeros({3, 3, 3, 4}, DType::f32));
  EXPECT_THAT(error_of([&] { conv2d(x, k, {.max_pool = {0, 2}}); }),
              HasSubstr("conv2d: max_pool (0, 2); each extent must be >= 1 ({1, 1}: no pooling)"));
  EXPECT_THAT(error_of([&] { conv2d(x, k, {.padding = Padding::valid, .max_pool = {2, 4}}); }),
              HasSubstr("conv2d: max_pool (2, 4) on the convolution's output of (3, 3) (H, W): the window must fit"));
  Var big = g.input("big", Array::zeros({1, 20, 20, 1}, DType::f32));
  Var k1 = g.input("k1", Array::zeros({3, 3, 1, 2}, DType::f32));
  EXPECT_THAT(error_of([&] { conv2d(big, k1, {.max_pool = {17, 16}}); }),
              HasSubstr("conv2d: max_pool (17, 16) has 272 elements; a fused pool takes at most 256"));
  // The largest window it takes, and the output's shape (VALID: rounded down).
  EXPECT_EQ(conv2d(big, k1, {.max_pool = {16, 16}}).shape(), (Shape{1, 1, 1, 2}));
  EXPECT_EQ(conv2d(x, k, {.max_pool = {2, 3}}).shape(), (Shape{2, 2, 1, 4}));
  EXPECT_EQ(conv2d(x, k, {.max_pool = {1, 1}}).shape(), (Shape{2, 5, 5, 4}));
  // The layer checks its pool when it is built.
  struct Bad : Module {
    Bad() { Conv(*this, "c", 1, 4, {3, 3}, {.max_pool = {2, 0}}); }
  };
  EXPECT_THAT(error_of([] { Bad b; }), HasSubstr("Conv \"c\": max_pool (2, 0); each extent must be >= 1"));
}

// The Conv layer passes its max_pool on: the layer's output is max_pool of its unpooled output.
TEST(Conv2dMaxPool, TheConvLayerPools) {
  struct Model : Module {
    Conv pooled{*this, "a", 2, 3, {3, 3}, {.relu = true, .max_pool = {2, 2}}};
    Conv plain{*this, "b", 2, 3, {3, 3}, {.relu = true}};
  } model;
  Tree params = model.init(1, DType::f64);
  params.set("b/kernel", params.at("a/kernel"));
  params.set("a/bias", test::f64_array({3}, 7001));
  params.set("b/bias", params.at("a/bias"));
  Graph g;
  VarTree p;
  for (const auto& [key, a] : params) p.set(key, g.input(key, a));
  Var x = g.input("x", test::f64_array({2, 6, 6, 2}, 7002));
  Var y = model.pooled(p, x), want = max_pool(model.plain(p, x), {2, 2}, {2, 2});
  ASSERT_EQ(y.shape(), (Shape{2, 3, 3, 3}));
  expect_same("y", to_double(y.value().data<double>()), to_double(want.value().data<double>()), 0);
}

}  // namespace
}  // namespace datarax::nn
