// The layer functions against naive references and their backward against central finite
// differences in f64.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "datarax/nn/activation.h"
#include "datarax/nn/cross_entropy.h"
#include "nn/gradcheck.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using test::numeric_grad;
using test::relative_error;
using test::uniform;
using datarax::test::error_of;

constexpr double kTol = 1e-6;

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}






// Checks activation backward against finite differences of Σ f(x) ⊙ dout, away from ReLU's kink.
template <class Fwd, class Bwd>
void check_activation(const char* name, Fwd fwd, Bwd bwd) {
  auto x = uniform(64, -3, 3, 11);
  for (double& v : x)
    if (std::abs(v) < 1e-3) v = 0.5;
  const auto dout = uniform(x.size(), -1, 1, 12);
  const auto loss = [&] {
    std::vector<double> y(x.size());
    fwd(std::span<double>(y), std::span<const double>(x));
    return dot(y, dout);
  };
  std::vector<double> dx(x.size(), 5.0);
  bwd(std::span<double>(dx), std::span<const double>(dout), std::span<const double>(x));
  EXPECT_LT(relative_error(name, dx, numeric_grad(x, loss)), kTol);
  // In place: dinp aliasing dout gives the same values.
  std::vector<double> inplace = dout;
  bwd(std::span<double>(inplace), std::span<const double>(inplace), std::span<const double>(x));
  EXPECT_EQ(inplace, dx);
}




// Σ_b mask[b] · (−log softmax(z[b])[y[b]]) / denom, naively in long double.
double naive_loss(const std::vector<double>& z, const std::vector<std::int32_t>& y,
                  const std::vector<double>& mask, double denom, int B, int C) {
  long double total = 0;
  for (int b = 0; b < B; ++b) {
    if (mask[b] == 0) continue;
    long double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(static_cast<long double>(z[b * C + c]));
    total += mask[b] * -std::log(std::exp(static_cast<long double>(z[b * C + y[b]])) / sum);
  }
  return static_cast<double>(total / denom);
}

TEST(CrossEntropy, LossAndGradientWithMaskAndDenominator) {
  const int B = 5, C = 4;
  auto z = uniform(B * C, -2, 2, 13);
  const std::vector<std::int32_t> y{0, 3, -1, 2, 1};  // row 2 is padding: mask 0, label -1
  const std::vector<double> mask{1, 1, 0, 0.5, 1};
  const double denom = 7.5;
  std::vector<double> probs(B * C);
  const double loss = softmax_cross_entropy_forward(probs, z, y, mask, denom, B, C);
  EXPECT_NEAR(loss, naive_loss(z, y, mask, denom, B, C), 1e-14);
  for (int b = 0; b < B; ++b)
    EXPECT_NEAR(std::accumulate(probs.begin() + b * C, probs.begin() + (b + 1) * C, 0.0), 1.0,
                1e-15);

  std::vector<double> dz(B * C, 42.0);
  softmax_cross_entropy_backward(dz, probs, y, mask, denom, B, C);
  const auto f = [&] {
    std::vector<double> p(B * C);
    return softmax_cross_entropy_forward(p, z, y, mask, denom, B, C);
  };
  EXPECT_LT(relative_error("cross-entropy dlogits", dz, numeric_grad(z, f)), kTol);
  for (int c = 0; c < C; ++c) EXPECT_EQ(dz[2 * C + c], 0.0);  // the masked row

  // In place: dlogits aliasing probs.
  softmax_cross_entropy_backward(std::span<double>(probs), std::span<const double>(probs), y,
                                 mask, denom, B, C);
  EXPECT_EQ(probs, dz);
}

TEST(CrossEntropy, DenominatorScalesAndMaskedRowsDoNotCount) {
  const int B = 3, C = 3;
  auto z = uniform(B * C, -1, 1, 14);
  const std::vector<std::int32_t> y{1, 2, 0};
  std::vector<double> p(B * C);
  const double sum = softmax_cross_entropy_forward(p, z, y, {}, 1.0, B, C);  // empty mask: all 1
  EXPECT_NEAR(softmax_cross_entropy_forward(p, z, y, {}, 3.0, B, C), sum / 3, 1e-15);
  const std::vector<double> mask{1, 0, 1};
  const double masked = softmax_cross_entropy_forward(p, z, y, mask, 2.0, B, C);
  z[3] = 1e6;  // a masked row's logits change nothing
  EXPECT_EQ(softmax_cross_entropy_forward(p, z, y, mask, 2.0, B, C), masked);
  EXPECT_NEAR(masked, naive_loss(z, y, mask, 2.0, B, C), 1e-14);
}

TEST(CrossEntropy, StableWithLargeLogits) {
  // Without subtracting the row maximum, exp(300) overflows float and exp(-1e4) underflows.
  const int C = 3;
  const std::vector<float> z{100.0f, 200.0f, 300.0f, 1e4f, -1e4f, 0.0f, 5e3f, 5e3f, -5e3f};
  const std::vector<std::int32_t> y{0, 1, 0};
  std::vector<float> probs(9);
  const double loss = softmax_cross_entropy_forward(probs, z, y, {}, 1.0, 3, C);
  // Row 0: −log softmax = 300 − 100 + log(1 + e^−100 + e^−200) = 200 (in float precision).
  // Row 1: 1e4 − (−1e4) = 2e4. Row 2: two equal maxima: log 2.
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, 200.0 + 2e4 + std::log(2.0), 1e-3);
  for (float v : probs) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(probs[2], 1.0f);
  EXPECT_NEAR(probs[6], 0.5f, 1e-7);
  std::vector<float> dz(9);
  softmax_cross_entropy_backward(dz, probs, y, {}, 1.0, 3, C);
  for (float v : dz) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(dz[0], -1.0f);  // softmax 0 at the label: gradient −1
}

TEST(CrossEntropy, BadArgumentsAreNamed) {
  std::vector<double> z(6), p(6);
  const std::vector<std::int32_t> y{0, 3};
  EXPECT_THAT(error_of([&] { softmax_cross_entropy_forward(p, z, y, {}, 1.0, 2, 3); }),
              HasSubstr("softmax_cross_entropy_forward: labels[1] = 3 is out of range (0..2)"));
  EXPECT_THAT(error_of([&] { softmax_cross_entropy_forward(p, z, {}, {}, 1.0, 2, 3); }),
              HasSubstr("labels has 0 elements; its shape [B] = [2] needs 2"));
  const std::vector<std::int32_t> ok{0, 1};
  EXPECT_THAT(error_of([&] { softmax_cross_entropy_backward(p, z, ok, {}, 0.0, 2, 3); }),
              HasSubstr("softmax_cross_entropy_backward: denom = 0 must be > 0"));
}

TEST(CrossEntropy, CountCorrectTakesTheFirstMaximumAndSkipsMaskedRows) {
  const std::vector<double> z{1, 3, 3,  // tie: first maximum is class 1
                              5, 0, 0,  //
                              0, 0, 9,  //
                              2, 1, 0};
  const std::vector<std::int32_t> y{1, 0, 1, 0};
  EXPECT_EQ(count_correct(z, y, {}, 4, 3), 3);
  const std::vector<double> mask{1, 0, 1, 1};
  EXPECT_EQ(count_correct(z, y, mask, 4, 3), 2);
  const std::vector<std::int32_t> y2{2, 0, 1, 0};
  EXPECT_EQ(count_correct(z, y2, {}, 4, 3), 2);
}

}  // namespace
}  // namespace datarax::nn
