// causal_attention against the untiled formula in double (a full T × T softmax per head), on
// T below, at and across the 64-row tile, and its gradients by central differences.
#include "datarax/nn/ops/attention.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/reduce.h"
#include "datarax/nn/value_and_grad.h"
#include "nn/ops/op_check.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::check_op;
using test::random;
using test::values;

// q, k, v [B, T, H, D]: S = q kᵀ / √D with s > t masked, softmax over s in long double, times v.
std::vector<double> naive_attention(const std::vector<double>& q, const std::vector<double>& k,
                                    const std::vector<double>& v, int B, int T, int H, int D) {
  std::vector<double> out(q.size());
  std::vector<long double> p(static_cast<std::size_t>(T));
  auto at = [&](int b, int t, int h, int d) { return ((static_cast<std::size_t>(b) * T + t) * H + h) * D + d; };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int t = 0; t < T; ++t) {
        long double total = 0;
        for (int s = 0; s <= t; ++s) {
          long double dot = 0;
          for (int d = 0; d < D; ++d) dot += static_cast<long double>(q[at(b, t, h, d)]) * k[at(b, s, h, d)];
          p[s] = std::exp(dot / std::sqrt(static_cast<long double>(D)));
          total += p[s];
        }
        for (int d = 0; d < D; ++d) {
          long double acc = 0;
          for (int s = 0; s <= t; ++s) acc += p[s] / total * v[at(b, s, h, d)];
          out[at(b, t, h, d)] = static_cast<double>(acc);
        }
      }
  return out;
}

struct Case {
  int B, T, H, D;
};

TEST(CausalAttention, ForwardMatchesUntiledFormulaInF64AndF32) {
  const Case cases[] = {{1, 1, 1, 1}, {2, 7, 3, 5},  {1, 64, 2, 8}, {2, 65, 2, 4},
                        {1, 130, 3, 16}, {1, 129, 1, 64}, {3, 20, 1, 3}};
  for (const Case& c : cases)
    for (double range : {1.0, 8.0}) {  // 8: scores of ±64·√D — the online softmax must rescale
      const Shape s{c.B, c.T, c.H, c.D};
      const Array q = random(s, 1, DType::f64, -range, range), k = random(s, 2, DType::f64, -range, range),
                  v = random(s, 3);
      const auto want = naive_attention(values(q), values(k), values(v), c.B, c.T, c.H, c.D);
      for (DType dt : {DType::f64, DType::f32}) {
        Graph g;
        auto in = [&](const char* n, const Array& a) { return g.input(n, dt == DType::f64 ? a : a.astype(dt)); };
        Var y = causal_attention(in("q", q), in("k", k), in("v", v));
        ASSERT_EQ(y.shape(), s);
        // Measured: f64 within 1.2e-14; f32 within 1.2e-7 at range 1 and 9.5e-6 at range 8, where
        // scores reach ±64·√D and f32's rounding of them (2^-24 relative) moves the exps by ~1e-5.
        const double tol = dt == DType::f64 ? 1e-12 : (range > 1 ? 1e-4 : 2e-6);
        EXPECT_LT(test::max_diff(values(y.value()), want), tol)
            << "B " << c.B << " T " << c.T << " H " << c.H << " D " << c.D << " range " << range << " " << to_string(dt);
      }
    }
}

TEST(CausalAttention, GradientsMatchCentralDifferences) {
  const Case cases[] = {{1, 1, 1, 2}, {2, 7, 2, 3}, {1, 65, 2, 4}, {1, 130, 1, 3}};
  for (const Case& c : cases) {
    const Shape s{c.B, c.T, c.H, c.D};
    const auto r = check_op([](const VarTree& p, const VarTree&) { return causal_attention(p["q"], p["k"], p["v"]); },
                            {{"q", random(s, 4, DType::f64, -2, 2)}, {"k", random(s, 5, DType::f64, -2, 2)},
                             {"v", random(s, 6)}},
                            {}, 96);
    EXPECT_TRUE(r.passed) << "B " << c.B << " T " << c.T << " H " << c.H << " D " << c.D;
  }
  // One Var as q, k and v (self-attention without projections): three gradients add up.
  EXPECT_TRUE(check_op([](const VarTree& p, const VarTree&) { return causal_attention(p["x"], p["x"], p["x"]); },
                       {{"x", random({1, 66, 2, 3}, 7, DType::f64, -2, 2)}}, {}, 96)
                  .passed);
}

TEST(CausalAttention, BadShapesAreNamed) {
  Graph g;
  Var q = g.input("q", random({1, 4, 2, 3}, 1)), k = g.input("k", random({1, 4, 2, 2}, 1));
  EXPECT_THAT(error_of([&] { causal_attention(q, k, q); }),
              HasSubstr("causal_attention: q, k and v have shapes [1, 4, 2, 3], [1, 4, 2, 2], [1, 4, 2, 3]; they "
                        "need one shape [B, T, H, D]"));
  Var r3 = g.input("r3", random({4, 2, 3}, 1));
  EXPECT_THAT(error_of([&] { causal_attention(r3, r3, r3); }),
              HasSubstr("causal_attention: q has shape [4, 2, 3]; it needs [B, T, H, D]"));
  Var d0 = g.input("d0", random({1, 4, 2, 0}, 1));
  EXPECT_THAT(error_of([&] { causal_attention(d0, d0, d0); }), HasSubstr("causal_attention: head size D = 0"));
}

// The packed form on qkv [B, T, 3 · H · D] against the three-input form on its thirds (copied out
// here): the same arithmetic on the same values in the same order, so the same bits — the output,
// and the gradient of qkv against dq, dk and dv side by side — in f64 and f32, on T below, at and
// across the 64-row tile.
TEST(CausalAttention, PackedQkvGivesTheSameBitsAsThreeInputs) {
  const Case cases[] = {{1, 1, 1, 1}, {2, 7, 3, 5}, {1, 65, 2, 4}, {2, 130, 3, 16}, {1, 129, 1, 64}};
  for (const Case& c : cases)
    for (DType dt : {DType::f64, DType::f32}) {
      SCOPED_TRACE("B " + std::to_string(c.B) + " T " + std::to_string(c.T) + " H " + std::to_string(c.H) + " D " +
                   std::to_string(c.D) + " " + std::string(to_string(dt)));
      const std::int64_t C = c.H * c.D, rows = c.B * c.T;
      const Array qkv = random({c.B, c.T, 3 * C}, 10, DType::f64, -2, 2).astype(dt);
      const Array dout = random({c.B, c.T, C}, 11).astype(dt);
      // q, k, v [B, T, H, D]: the thirds of each row of qkv.
      Tree split_params;
      for (int part = 0; part < 3; ++part) {
        Array a = Array::zeros({c.B, c.T, c.H, c.D}, dt);
        for (std::int64_t r = 0; r < rows; ++r)
          std::memcpy(static_cast<std::byte*>(a.raw()) + r * C * byte_size(dt),
                      static_cast<const std::byte*>(qkv.raw()) + (r * 3 * C + part * C) * byte_size(dt),
                      static_cast<std::size_t>(C) * byte_size(dt));
        split_params.set(std::string(1, "qkv"[part]), a);
      }
      Tree batch{{"dout", dout}}, split_batch{{"dout", dout.reshape({c.B, c.T, c.H, c.D})}};
      ValueAndGrad packed([&](const VarTree& p, const VarTree& b) {
        Var y = causal_attention(p["qkv"], c.H);
        expose("y", y);
        return sum(mul(y, b["dout"]));
      });
      ValueAndGrad three([&](const VarTree& p, const VarTree& b) {
        Var y = causal_attention(p["q"], p["k"], p["v"]);
        expose("y", y);
        return sum(mul(y, b["dout"]));
      });
      const auto rp = packed(Tree{{"qkv", qkv}}, batch);
      const auto r3 = three(split_params, split_batch);
      ASSERT_EQ(packed.outputs().at("y").shape(), (Shape{c.B, c.T, C}));
      EXPECT_EQ(values(packed.outputs().at("y")), values(three.outputs().at("y")));
      const std::vector<double> dqkv = values(rp.grads.at("qkv"));
      const std::vector<double> dq = values(r3.grads.at("q")), dk = values(r3.grads.at("k")), dv = values(r3.grads.at("v"));
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t i = 0; i < C; ++i) {
          const auto at = static_cast<std::size_t>(r * C + i), packed_at = static_cast<std::size_t>(r * 3 * C + i);
          ASSERT_EQ(dqkv[packed_at], dq[at]) << "dq row " << r << " " << i;
          ASSERT_EQ(dqkv[packed_at + static_cast<std::size_t>(C)], dk[at]) << "dk row " << r << " " << i;
          ASSERT_EQ(dqkv[packed_at + static_cast<std::size_t>(2 * C)], dv[at]) << "dv row " << r << " " << i;
        }
    }
}

TEST(CausalAttention, PackedGradientsMatchCentralDifferences) {
  for (const Case& c : {Case{2, 7, 2, 3}, Case{1, 66, 3, 2}}) {
    const auto r = check_op([&](const VarTree& p, const VarTree&) { return causal_attention(p["qkv"], c.H); },
                            {{"qkv", random({c.B, c.T, 3 * c.H * c.D}, 12, DType::f64, -2, 2)}}, {}, 96);
    EXPECT_TRUE(r.passed) << "B " << c.B << " T " << c.T << " H " << c.H << " D " << c.D;
  }
}

TEST(CausalAttention, BadPackedShapesAreNamed) {
  Graph g;
  Var r4 = g.input("r4", random({1, 4, 2, 6}, 1)), qkv = g.input("qkv", random({1, 4, 12}, 1));
  Var empty = g.input("empty", random({1, 4, 0}, 1));
  EXPECT_THAT(error_of([&] { causal_attention(r4, 2); }),
              HasSubstr("causal_attention: qkv has shape [1, 4, 2, 6]; it needs [B, T, 3 · C]"));
  EXPECT_THAT(error_of([&] { causal_attention(qkv, 0); }), HasSubstr("causal_attention: heads = 0; valid: >= 1"));
  EXPECT_THAT(error_of([&] { causal_attention(qkv, 3); }),
              HasSubstr("causal_attention: qkv has shape [1, 4, 12] and heads = 3: its last extent must be "
                        "3 · heads · D with D >= 1, a positive multiple of 9"));
  EXPECT_THAT(error_of([&] { causal_attention(empty, 1); }), HasSubstr("a positive multiple of 3"));
  EXPECT_EQ(causal_attention(qkv, 2).shape(), (Shape{1, 4, 4}));
}

}  // namespace
}  // namespace datarax::nn
