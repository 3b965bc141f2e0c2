// conv2d's direct path (one input channel, a 3x3 kernel, f32 on AVX-512: src/nn/ops/conv_direct.h)
// against naive loops in double: the forward, and dkernel, dbias and dx of Σ conv2d(x, k, b) ⊙ dout
// written out here (the ReLU's mask taken from the naive forward). Where the CPU has no AVX-512
// the same calls run the im2col path, and the same expectations hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "datarax/nn/ops/conv.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/reduce.h"
#include "datarax/nn/value_and_grad.h"
#include "nn/conv_reference.h"
#include "nn/gradcheck.h"

namespace datarax::nn {
namespace {

using test::ConvCase;
using test::uniform;

struct Expected {
  std::vector<double> y, dk, db, dx;
};

// The naive forward (with the ReLU when asked) and the gradients of Σ y ⊙ dout.
Expected naive(const ConvCase& t, const std::vector<double>& x, const std::vector<double>& k,
               const std::vector<double>& b, const std::vector<double>& dout, bool relu) {
  Expected e{test::naive_conv2d(t, x, k, b), std::vector<double>(static_cast<std::size_t>(9 * t.O)),
             std::vector<double>(static_cast<std::size_t>(t.O)), std::vector<double>(x.size())};
  const test::Dim h = test::same_or_valid(t.same, t.H, 3, t.SH), w = test::same_or_valid(t.same, t.W, 3, t.SW);
  for (std::int64_t n = 0; n < t.N; ++n)
    for (std::int64_t oh = 0; oh < h.out; ++oh)
      for (std::int64_t ow = 0; ow < w.out; ++ow)
        for (std::int64_t o = 0; o < t.O; ++o) {
          const auto i = static_cast<std::size_t>(((n * h.out + oh) * w.out + ow) * t.O + o);
          if (relu) e.y[i] = std::max(e.y[i], 0.0);
          const double g = relu && e.y[i] <= 0 ? 0.0 : dout[i];
          e.db[static_cast<std::size_t>(o)] += g;
          for (std::int64_t kh = 0; kh < 3; ++kh)
            for (std::int64_t kw = 0; kw < 3; ++kw) {
              const std::int64_t ih = oh * t.SH - h.pad_before + kh, iw = ow * t.SW - w.pad_before + kw;
              if (ih < 0 || ih >= t.H || iw < 0 || iw >= t.W) continue;
              const auto xi = static_cast<std::size_t>((n * t.H + ih) * t.W + iw);
              e.dk[static_cast<std::size_t>((kh * 3 + kw) * t.O + o)] += x[xi] * g;
              e.dx[xi] += k[static_cast<std::size_t>((kh * 3 + kw) * t.O + o)] * g;
            }
        }
  return e;
}

// f32 against double: each value is a sum of at most N·OH·OW (here <= 2·9·11) products of numbers
// in [-1, 1], so its rounding is within a few 1e-5 of the sum of their magnitudes.
void expect_near(const char* what, std::span<const float> got, const std::vector<double>& want, double scale) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5 * scale) << what << " " << i;
}

TEST(Conv2dDirect, OneChannel3x3MatchesNaiveLoops) {
  // Output channels below, at and across the 16- and 32-lane blocks; strides 1 and 2, SAME and
  // VALID, an image smaller than the kernel (SAME), odd sizes; with and without bias and ReLU.
  const std::vector<ConvCase> cases = {
      {2, 9, 11, 1, 3, 3, 32, 1, 1, true}, {2, 9, 11, 1, 3, 3, 17, 1, 1, false}, {1, 7, 6, 1, 3, 3, 64, 2, 1, true},
      {2, 5, 5, 1, 3, 3, 40, 2, 2, false}, {1, 1, 2, 1, 3, 3, 1, 1, 1, true},    {1, 4, 3, 1, 3, 3, 33, 1, 2, true},
  };
  std::uint64_t seed = 900;
  for (const ConvCase& t : cases)
    for (int variant = 0; variant < 4; ++variant) {
      const bool relu = variant % 2 == 1, with_bias = variant >= 2;
      SCOPED_TRACE(test::describe(t) + (relu ? " relu" : "") + (with_bias ? " bias" : ""));
      const test::Dim h = test::same_or_valid(t.same, t.H, 3, t.SH), w = test::same_or_valid(t.same, t.W, 3, t.SW);
      const Shape xs{t.N, t.H, t.W, 1}, ks{3, 3, 1, t.O}, ys{t.N, h.out, w.out, t.O};
      const auto x = uniform(static_cast<std::size_t>(xs.numel()), -1, 1, seed++);
      const auto k = uniform(static_cast<std::size_t>(ks.numel()), -1, 1, seed++);
      const auto b = with_bias ? uniform(static_cast<std::size_t>(t.O), -1, 1, seed++) : std::vector<double>{};
      const auto dout = uniform(static_cast<std::size_t>(ys.numel()), -1, 1, seed++);
      const Expected e = naive(t, x, k, b, dout, relu);

      // x an input (no dx: the direct backward), then a parameter (dx: the im2col path for it).
      for (const bool x_param : {false, true}) {
        ValueAndGrad vg([&](const VarTree& p, const VarTree& d) {
          const Conv2dOptions o{.strides = {t.SH, t.SW}, .padding = t.same ? Padding::same : Padding::valid, .relu = relu};
          const Var xv = x_param ? p["x"] : d["x"];
          const Var y = with_bias ? conv2d(xv, p["k"], p["b"], o) : conv2d(xv, p["k"], o);
          expose("y", y);
          return sum(mul(y, d["dout"]));
        });
        Tree params, data;
        params.set("k", Array::from_values(ks, test::to_float(k)));
        if (with_bias) params.set("b", Array::from_values(Shape{t.O}, test::to_float(b)));
        (x_param ? params : data).set("x", Array::from_values(xs, test::to_float(x)));
        data.set("dout", Array::from_values(ys, test::to_float(dout)));
        for (int replay = 0; replay < 2; ++replay) {  // recorded, then replayed
          const auto r = vg(params, data);
          expect_near("y", vg.outputs().at("y").data<float>(), e.y, 9);
          const double positions = static_cast<double>(t.N * h.out * w.out);
          expect_near("dk", r.grads.at("k").data<float>(), e.dk, positions);
          if (with_bias) expect_near("db", r.grads.at("b").data<float>(), e.db, positions);
          if (x_param) expect_near("dx", r.grads.at("x").data<float>(), e.dx, 9.0 * static_cast<double>(t.O));
        }
      }
    }
}

TEST(Conv2dDirect, KernelGradientsAddWhereTheKernelIsUsedTwice) {
  // One kernel on two images: dk is the sum of both convolutions' (the second op writes it, the
  // first adds).
  const ConvCase t{2, 6, 5, 1, 3, 3, 20, 1, 1, true};
  const auto x1 = uniform(60, -1, 1, 950), x2 = uniform(60, -1, 1, 951), k = uniform(180, -1, 1, 952),
             d1 = uniform(1200, -1, 1, 953), d2 = uniform(1200, -1, 1, 954);
  const Expected e1 = naive(t, x1, k, {}, d1, true), e2 = naive(t, x2, k, {}, d2, true);
  ValueAndGrad vg([](const VarTree& p, const VarTree& d) {
    return sum(mul(conv2d(d["x1"], p["k"], {.relu = true}), d["d1"])) +
           sum(mul(conv2d(d["x2"], p["k"], {.relu = true}), d["d2"]));
  });
  Tree params, data;
  params.set("k", Array::from_values(Shape{3, 3, 1, 20}, test::to_float(k)));
  data.set("x1", Array::from_values(Shape{2, 6, 5, 1}, test::to_float(x1)));
  data.set("x2", Array::from_values(Shape{2, 6, 5, 1}, test::to_float(x2)));
  data.set("d1", Array::from_values(Shape{2, 6, 5, 20}, test::to_float(d1)));
  data.set("d2", Array::from_values(Shape{2, 6, 5, 20}, test::to_float(d2)));
  std::vector<double> want(e1.dk.size());
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = e1.dk[i] + e2.dk[i];
  expect_near("dk", vg(params, data).grads.at("k").data<float>(), want, 120);
}

}  // namespace
}  // namespace datarax::nn
