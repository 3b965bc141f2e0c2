// layer_norm against a naive two-pass reference in long double, and its gradients.
#include "datarax/nn/ops/layer_norm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "nn/ops/op_check.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::check_op;
using test::random;
using test::values;

std::vector<double> naive(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b,
                          std::int64_t C, double eps) {
  std::vector<double> y(x.size());
  for (std::size_t r = 0; r * C < x.size(); ++r) {
    long double m = 0, v = 0;
    for (std::int64_t c = 0; c < C; ++c) m += x[r * C + c];
    m /= C;
    for (std::int64_t c = 0; c < C; ++c) v += (x[r * C + c] - m) * (x[r * C + c] - m);
    v /= C;
    for (std::int64_t c = 0; c < C; ++c)
      y[r * C + c] = static_cast<double>((x[r * C + c] - m) / std::sqrt(v + eps) * w[c] + b[c]);
  }
  return y;
}

const std::vector<std::int64_t> kShapes[] = {{1}, {1, 1}, {3, 5}, {2, 3, 8}, {4, 2}, {2, 1, 17}};

TEST(LayerNorm, ForwardMatchesNaiveInF64AndF32) {
  for (const auto& dims : kShapes) {
    const Shape s(dims);
    const std::int64_t C = dims.back();
    const Array x = random(s, 1, DType::f64, -3, 5), w = random({C}, 2), b = random({C}, 3);
    for (double eps : {1e-5, 0.5}) {
      const auto want = naive(values(x), values(w), values(b), C, eps);
      for (DType dt : {DType::f64, DType::f32}) {
        Graph g;
        auto in = [&](const char* n, const Array& a) { return g.input(n, dt == DType::f64 ? a : a.astype(dt)); };
        Var y = layer_norm(in("x", x), in("w", w), in("b", b), eps);
        EXPECT_LT(test::max_diff(values(y.value()), want), dt == DType::f64 ? 1e-13 : 1e-5)
            << s.to_string() << " eps " << eps << " " << to_string(dt);
      }
    }
  }
}

TEST(LayerNorm, GradientsMatchCentralDifferences) {
  for (const auto& dims : kShapes) {
    const std::int64_t C = dims.back();
    const auto r = check_op([](const VarTree& p, const VarTree&) { return layer_norm(p["x"], p["scale"], p["bias"]); },
                            {{"x", random(Shape(dims), 4, DType::f64, -2, 2)},
                             {"scale", random({C}, 5, DType::f64, 0.5, 1.5)},
                             {"bias", random({C}, 6)}});
    EXPECT_TRUE(r.passed) << Shape(dims).to_string();
  }
}

TEST(LayerNorm, BadArgumentsAreNamed) {
  Graph g;
  Var x = g.input("x", random({2, 3}, 1)), w3 = g.input("w", random({3}, 2)), w4 = g.input("w4", random({4}, 2));
  EXPECT_THAT(error_of([&] { layer_norm(x, w4, w3); }),
              HasSubstr("layer_norm: scale has shape [4]; the input [2, 3] needs [3]"));
  EXPECT_THAT(error_of([&] { layer_norm(x, w3, w4); }), HasSubstr("layer_norm: bias has shape [4]"));
  EXPECT_THAT(error_of([&] { layer_norm(x, w3, w3, -1.0); }), HasSubstr("layer_norm: eps -1.000000; valid: > 0"));
  EXPECT_THAT(error_of([&] { layer_norm(x, w3, w3, 0.0); }), HasSubstr("layer_norm: eps 0.000000"));
}

}  // namespace
}  // namespace datarax::nn
