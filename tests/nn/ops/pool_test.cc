// max_pool and avg_pool against naive loops (forward, f64 and f32) and central differences
// (gradients, f64).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "datarax/nn/graph.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/pool.h"
#include "datarax/nn/ops/reduce.h"
#include "nn/conv_reference.h"
#include "nn/gradcheck.h"
#include "nn/op_gradcheck.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::PoolCase;
using test::uniform;

Padding padding_of(const PoolCase& t) { return t.same ? Padding::same : Padding::valid; }

// Windows 1 to 3, strides 1 to 3 (overlapping, touching and gapped windows), odd sizes, SAME and
// VALID, a window as large as the input. Windows that tile the input (stride = window, SAME or
// VALID on a divisible extent: max_pool writes a fresh dx window by window) and that leave its
// last row and column out (VALID 2x2 on 5x7: those get zeros).
const std::vector<PoolCase> kCases = {
    {1, 1, 1, 1, 1, 1, 1, 1, true},  {2, 4, 4, 3, 2, 2, 2, 2, false}, {2, 5, 7, 2, 2, 2, 2, 2, true},
    {1, 5, 7, 2, 3, 3, 1, 1, true},  {1, 5, 7, 2, 3, 3, 2, 1, false}, {3, 6, 5, 1, 3, 2, 3, 2, true},
    {1, 3, 4, 4, 3, 4, 1, 1, false}, {1, 7, 3, 3, 2, 3, 1, 2, true},  {1, 5, 7, 2, 2, 2, 2, 2, false},
};

// Distinct values 0.01 apart in a pseudo-random order: no ties, and no moving by eps changes a max.
std::vector<double> distinct_values(std::size_t n, std::uint64_t seed) {
  std::vector<double> v(n);
  std::iota(v.begin(), v.end(), 0.0);
  const auto keys = uniform(n, 0, 1, seed);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
  for (std::size_t i = 0; i < n; ++i) v[order[i]] = 0.01 * static_cast<double>(i) - 1;
  return v;
}

TEST(Pool, ForwardMatchesNaiveLoopsInF64AndF32) {
  std::uint64_t seed = 1;
  for (const PoolCase& t : kCases) {
    SCOPED_TRACE(test::describe(t));
    const Shape xs{t.N, t.H, t.W, t.C};
    const auto x = uniform(static_cast<std::size_t>(xs.numel()), -1, 1, seed++);
    const test::Dim h = test::same_or_valid(t.same, t.H, t.KH, t.SH), w = test::same_or_valid(t.same, t.W, t.KW, t.SW);
    Graph g;
    Var x64 = g.input("x", Array::from_values(xs, x)), x32 = g.input("x32", Array::from_values(xs, test::to_float(x)));
    for (int kind = 0; kind < 3; ++kind) {  // max, avg counting the padding (Flax's default), avg not
      const auto want = test::naive_pool(t, x, kind == 0, kind == 1);
      const auto run = [&](Var in) {
        return kind == 0 ? max_pool(in, {t.KH, t.KW}, {t.SH, t.SW}, padding_of(t))
                         : avg_pool(in, {t.KH, t.KW}, {t.SH, t.SW}, padding_of(t), kind == 1);
      };
      Var y64 = run(x64), y32 = run(x32);
      ASSERT_EQ(y64.shape(), (Shape{t.N, h.out, w.out, t.C})) << kind;
      for (std::size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(y64.value().data<double>()[i], want[i], 1e-15) << kind << " " << i;
        ASSERT_NEAR(y32.value().data<float>()[i], want[i], 1e-6) << kind << " " << i;
      }
    }
  }
}

TEST(Pool, AvgPoolCountsThePaddingByDefaultAsFlaxDoes) {
  // 3x3 ones, window 2x2 stride 2 SAME: out 2x2, the one pad row and column after. The last
  // window holds one real element: 1/4 counting the padding (Flax's count_include_pad=True), 1
  // without.
  Graph g;
  Var x = g.input("x", Array::full({1, 3, 3, 1}, 1.0, DType::f64));
  Var with = avg_pool(x, {2, 2}, {2, 2}, Padding::same);
  Var without = avg_pool(x, {2, 2}, {2, 2}, Padding::same, false);
  EXPECT_EQ(with.value().data<double>()[0], 1.0);
  EXPECT_EQ(with.value().data<double>()[1], 0.5);
  EXPECT_EQ(with.value().data<double>()[3], 0.25);
  for (double v : without.value().data<double>()) EXPECT_EQ(v, 1.0);
}

// max pool is linear in x away from ties (values 0.01 apart, eps 1e-6) and avg pool everywhere,
// so the differences carry rounding only (~1e-10); the tolerance is 1e-6 as for conv2d.
TEST(Pool, GradientsMatchCentralDifferences) {
  std::uint64_t seed = 100;
  for (const PoolCase& t : kCases) {
    SCOPED_TRACE(test::describe(t));
    const Shape xs{t.N, t.H, t.W, t.C};
    Tree params;
    params.set("x", Array::from_values(xs, distinct_values(static_cast<std::size_t>(xs.numel()), seed++)));
    const test::Dim h = test::same_or_valid(t.same, t.H, t.KH, t.SH), w = test::same_or_valid(t.same, t.W, t.KW, t.SW);
    const Shape ys{t.N, h.out, w.out, t.C};
    for (int kind = 0; kind < 3; ++kind) {
      const auto report = test::check_vjp(
          [&](const VarTree& p) {
            return kind == 0 ? max_pool(p["x"], {t.KH, t.KW}, {t.SH, t.SW}, padding_of(t))
                             : avg_pool(p["x"], {t.KH, t.KW}, {t.SH, t.SW}, padding_of(t), kind == 1);
          },
          params, ys, seed++);
      EXPECT_TRUE(report.passed) << "kind " << kind << "\n" << report.to_string();
    }
  }
}

TEST(Pool, MaxPoolGradientsAddWhereTheInputIsUsedTwice) {
  // x feeds two max pools, tiling (2x2 stride 2) and not: the second op writes dx (fresh) and the
  // first adds to it.
  const Shape xs{2, 4, 6, 3};
  Tree params;
  params.set("x", Array::from_values(xs, distinct_values(static_cast<std::size_t>(xs.numel()), 700)));
  const auto report = test::check_vjp(
      [](const VarTree& p) {
        return max_pool(p["x"], {2, 2}, {2, 2}) + max_pool(p["x"], {3, 2}, {2, 2}, Padding::same);
      },
      params, {2, 2, 3, 3}, 701);
  EXPECT_TRUE(report.passed) << report.to_string();
}

TEST(Pool, MaxPoolGivesATiedGradientToTheFirstMaximum) {
  // Every window of 2x2 is a tie; the gradient goes to its top-left element (row-major first).
  Graph g;
  Var x = g.parameter("x", Array::full({1, 4, 4, 2}, 3.0, DType::f64));
  Var y = max_pool(x, {2, 2}, {2, 2});
  Var loss = sum(y);
  g.backward(loss);
  const auto dx = g.grad(x).data<double>();
  for (std::int64_t h = 0; h < 4; ++h)
    for (std::int64_t w = 0; w < 4; ++w)
      for (std::int64_t c = 0; c < 2; ++c)
        EXPECT_EQ(dx[static_cast<std::size_t>((h * 4 + w) * 2 + c)], h % 2 == 0 && w % 2 == 0 ? 1.0 : 0.0) << h << w;
}

TEST(Pool, BadArgumentsNameTheOpAndTheValue) {
  Graph g;
  Var x = g.input("x", Array::zeros({2, 5, 4, 3}, DType::f32));
  Var flat = g.input("flat", Array::zeros({5, 4, 3}, DType::f32));
  Var labels = g.input("labels", Array::zeros({2, 5, 4, 3}, DType::i32));
  EXPECT_THAT(error_of([&] { max_pool(flat, {2, 2}, {2, 2}); }),
              HasSubstr("max_pool: the input has shape [5, 4, 3]; it needs 4 dimensions [N, H, W, C] (NHWC)"));
  EXPECT_THAT(error_of([&] { avg_pool(x, {0, 2}, {2, 2}); }),
              HasSubstr("avg_pool: window size (0, 2); each extent must be >= 1"));
  EXPECT_THAT(error_of([&] { max_pool(x, {2, 2}, {1, -1}); }),
              HasSubstr("max_pool: strides (1, -1); each stride must be >= 1"));
  EXPECT_THAT(error_of([&] { max_pool(x, {2, 5}, {1, 1}); }),
              HasSubstr("max_pool: VALID padding with a window of (2, 5) on an input of (5, 4) (H, W): the window "
                        "must fit"));
  EXPECT_THAT(error_of([&] { max_pool(labels, {2, 2}, {2, 2}); }),
              HasSubstr("max_pool: operand 0 has dtype i32; valid: f32, f64"));
  EXPECT_EQ(max_pool(x, {2, 5}, {1, 1}, Padding::same).shape(), (Shape{2, 5, 4, 3}));
}

}  // namespace
}  // namespace datarax::nn
