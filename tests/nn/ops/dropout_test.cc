// dropout: the mask against SplitMix64 drawn here by the documented recipe, the same global example
// getting the same mask on any number of shards, the kept fraction, the gradient, the errors.
#include "datarax/nn/ops/dropout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/splitmix64.h"
#include "datarax/nn/ops/slice.h"
#include "nn/ops/op_check.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::detail::SplitMix64;
using datarax::test::error_of;
using test::check_op;
using test::random;
using test::values;

// The recipe of ops/dropout.h, written out: key = at(at(seed, step), example); element e is
// dropped when the top 53 bits of at(key, e) are below rate · 2^53.
bool reference_keeps(double rate, std::uint64_t seed, std::uint64_t step, std::uint64_t example, std::uint64_t e) {
  const std::uint64_t key = SplitMix64::at(SplitMix64::at(seed, step), example);
  return static_cast<double>(SplitMix64::at(key, e) >> 11) >= rate * 0x1.0p53;
}

Array counter(std::int64_t v) { return Array::scalar<std::int64_t>(v); }

TEST(Dropout, MaskFollowsTheRecipeAndScalesKeptElements) {
  const std::int64_t B = 4, E = 15;
  const Array x = random({B, 3, 5}, 1);
  const auto xv = values(x);
  for (DType dt : {DType::f64, DType::f32})
    for (double rate : {0.1, 0.5, 0.9}) {
      Graph g;
      Var y = dropout(g.input("x", x.astype(dt)), rate, 42, g.input("step", counter(7)), g.input("first", counter(100)));
      const auto yv = values(y.value());
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t e = 0; e < E; ++e) {
          const double want = reference_keeps(rate, 42, 7, 100 + b, e) ? xv[b * E + e] / (1 - rate) : 0.0;
          EXPECT_NEAR(yv[b * E + e], want, (dt == DType::f64 ? 1e-15 : 1e-6) * std::max(1.0, std::abs(want))) << rate << " " << b << " " << e;
        }
      // The public mask function says the same.
      EXPECT_EQ(dropout_keeps(rate, 42, 7, 101, 3), reference_keeps(rate, 42, 7, 101, 3));
    }
}

TEST(Dropout, SameGlobalExampleSameMaskOnAnyShardCount) {
  const std::int64_t B = 6;
  const Array x = Array::full({B, 2, 4}, 1.0, DType::f64);
  Graph whole;
  const auto all = values(dropout(whole.input("x", x), 0.5, 9, whole.input("s", counter(3)), whole.input("f", counter(0))).value());
  for (std::int64_t shards : {2, 3, 6}) {
    std::vector<double> joined;
    const std::int64_t per = B / shards;
    for (std::int64_t d = 0; d < shards; ++d) {
      Graph g;  // a device: its shard and the global index of its first example
      Var y = dropout(g.input("x", x.slice(d * per, (d + 1) * per)), 0.5, 9, g.input("s", counter(3)),
                      g.input("f", counter(d * per)));
      const auto v = values(y.value());
      joined.insert(joined.end(), v.begin(), v.end());
    }
    EXPECT_EQ(joined, all) << shards << " shards";
  }
  // Another step or seed: another mask.
  Graph g;
  EXPECT_NE(values(dropout(g.input("x", x), 0.5, 9, g.input("s", counter(4)), g.input("f", counter(0))).value()), all);
  EXPECT_NE(values(dropout(g.input("x2", x), 0.5, 10, g.input("s2", counter(3)), g.input("f2", counter(0))).value()), all);
}

TEST(Dropout, KeptFractionAndMeanAreAboutRight) {
  // 100,000 Bernoulli(0.7) draws: the kept fraction's stddev is 0.00145; 0.007 is ~5 sigma.
  Graph g;
  Var y = dropout(g.input("x", Array::full({100, 1000}, 1.0, DType::f32)), 0.3, 1, g.input("s", counter(0)),
                  g.input("f", Array::scalar<std::int32_t>(0)));
  double kept = 0, total = 0;
  for (float v : y.value().data<float>()) {
    kept += v != 0;
    total += v;
  }
  EXPECT_NEAR(kept / 1e5, 0.7, 0.007);
  EXPECT_NEAR(total / 1e5, 1.0, 0.01);  // inverted dropout keeps the mean
}

TEST(Dropout, RateZeroIsTheIdentityAndGradientsMatch) {
  Graph g;
  Var x = g.input("x", random({2, 3}, 1));
  Var y = dropout(x, 0.0, 1, g.input("s", counter(0)), g.input("f", counter(0)));
  EXPECT_EQ(y.id(), x.id());
  const Tree batch{{"step", counter(5)}, {"first", counter(12)}};
  EXPECT_TRUE(check_op([](const VarTree& p, const VarTree& b) { return dropout(p["x"], 0.4, 3, b["step"], b["first"]); },
                       {{"x", random({5, 2, 3}, 2)}}, batch)
                  .passed);
}

TEST(Dropout, BadArgumentsAreNamed) {
  Graph g;
  Var x = g.input("x", random({2, 3}, 1)), s = g.input("s", counter(0));
  EXPECT_THAT(error_of([&] { dropout(x, 1.0, 0, s, s); }), HasSubstr("dropout: rate 1.000000; valid: 0 <= rate < 1"));
  EXPECT_THAT(error_of([&] { dropout(x, -0.1, 0, s, s); }), HasSubstr("dropout: rate -0.100000"));
  EXPECT_THAT(error_of([&] { dropout(x, NAN, 0, s, s); }), HasSubstr("dropout: rate nan"));
  EXPECT_THAT(error_of([&] { dropout(x, 0.5, 0, g.input("f", random({1}, 1)), s); }),
              HasSubstr("dropout: step has dtype f64; valid: i32, i64"));
  EXPECT_THAT(error_of([&] { dropout(x, 0.5, 0, s, g.input("v", Array::zeros({2}, DType::i64))); }),
              HasSubstr("dropout: first_example has shape [2]; it needs one element"));
  EXPECT_THAT(error_of([&] { dropout(x, 0.5, 0, s, g.input("n", counter(-3))); }),
              HasSubstr("dropout: first_example is -3; valid: >= 0"));
  EXPECT_THAT(error_of([&] { dropout(x, 0.5, 0, Var(), s); }), HasSubstr("dropout: step is an empty Var"));
}

}  // namespace
}  // namespace datarax::nn
