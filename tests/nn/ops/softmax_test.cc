// softmax and log_softmax against a naive reference in long double, and their gradients.
#include "datarax/nn/ops/softmax.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "nn/ops/op_check.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::array;
using test::check_op;
using test::random;
using test::values;

// Softmax (or log-softmax) of x [dims] along `axis`, each distribution summed in long double
// without subtracting the max.
std::vector<double> naive(const std::vector<double>& x, const std::vector<std::int64_t>& dims, int axis, bool log) {
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < static_cast<int>(dims.size()); ++d) {
    if (d < axis) outer *= dims[d];
    if (d > axis) inner *= dims[d];
  }
  const std::int64_t n = dims[axis];
  std::vector<double> y(x.size());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      long double total = 0;
      for (std::int64_t j = 0; j < n; ++j) total += std::exp(static_cast<long double>(x[(o * n + j) * inner + i]));
      for (std::int64_t j = 0; j < n; ++j) {
        const long double xi = x[(o * n + j) * inner + i];
        y[(o * n + j) * inner + i] = static_cast<double>(log ? xi - std::log(total) : std::exp(xi) / total);
      }
    }
  return y;
}

struct Case {
  std::vector<std::int64_t> dims;
  int axis;
};
const Case kCases[] = {{{1}, 0}, {{1, 1}, -1}, {{3, 5}, -1}, {{3, 5}, 0}, {{2, 3, 4}, 1}, {{2, 3, 7}, -1}, {{4, 1, 3}, 1}};

TEST(Softmax, ForwardMatchesNaiveInF64AndF32) {
  for (bool log : {false, true})
    for (const Case& c : kCases) {
      const Shape s(c.dims);
      const Array x = random(s, 1, DType::f64, -4, 4);
      const auto want = naive(values(x), c.dims, c.axis < 0 ? c.axis + s.rank() : c.axis, log);
      for (DType dt : {DType::f64, DType::f32}) {
        Graph g;
        Var v = g.input("x", dt == DType::f64 ? x : x.astype(DType::f32));
        Var y = log ? log_softmax(v, c.axis) : softmax(v, c.axis);
        EXPECT_EQ(y.shape(), s);
        EXPECT_LT(test::max_diff(values(y.value()), want), dt == DType::f64 ? 1e-14 : 2e-6)
            << (log ? "log_softmax " : "softmax ") << s.to_string() << " axis " << c.axis << " " << to_string(dt);
      }
    }
}

TEST(Softmax, StableAtLargeLogits) {
  // exp(1000) overflows; the max-shifted form does not. Expected values by hand: softmax of
  // (1000, 999, 998) is that of (2, 1, 0).
  Graph g;
  Var x = g.input("x", array({1, 3}, {1000, 999, 998}));
  const auto want = naive({2, 1, 0}, {1, 3}, 1, false);
  const auto want_log = naive({2, 1, 0}, {1, 3}, 1, true);
  EXPECT_LT(test::max_diff(values(softmax(x).value()), want), 1e-15);
  EXPECT_LT(test::max_diff(values(log_softmax(x).value()), want_log), 1e-12);
  Var big = g.input("big", array({2}, {-1e30, 1e30}));
  EXPECT_EQ(values(softmax(big).value()), (std::vector<double>{0, 1}));
}

TEST(Softmax, GradientsMatchCentralDifferences) {
  for (bool log : {false, true})
    for (const Case& c : kCases) {
      const auto r = check_op([&](const VarTree& p, const VarTree&) { return log ? log_softmax(p["x"], c.axis) : softmax(p["x"], c.axis); },
                              {{"x", random(Shape(c.dims), 2, DType::f64, -2, 2)}});
      EXPECT_TRUE(r.passed) << (log ? "log_softmax " : "softmax ") << Shape(c.dims).to_string() << " axis " << c.axis;
    }
}

TEST(Softmax, BadArgumentsAreNamed) {
  Graph g;
  Var x = g.input("x", random({2, 3}, 3));
  EXPECT_THAT(error_of([&] { softmax(x, 2); }), HasSubstr("softmax: axis 2 is out of range for shape [2, 3]; valid: -2..1"));
  EXPECT_THAT(error_of([&] { log_softmax(x, -3); }), HasSubstr("log_softmax: axis -3 is out of range"));
  Var s = g.input("s", Array::scalar<double>(1.0));
  EXPECT_THAT(error_of([&] { softmax(s); }), HasSubstr("softmax: the input is a scalar"));
  Var i = g.input("i", test::ints({2}, {1, 2}));
  EXPECT_THAT(error_of([&] { softmax(i); }), HasSubstr("softmax: operand 0 has dtype i32; valid: f32, f64"));
}

}  // namespace
}  // namespace datarax::nn
