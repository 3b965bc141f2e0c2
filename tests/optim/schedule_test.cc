// Schedules at known steps, against optax's formulas written out here.
#include "datarax/optim/schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "support/error_of.h"

namespace datarax::optim {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;

TEST(Schedule, ConstantAndNumbers) {
  const Schedule s = 0.25;
  EXPECT_EQ(s(0), 0.25);
  EXPECT_EQ(s(1'000'000), 0.25);
  EXPECT_EQ(s.to_string(), "constant(value=0.25)");
  EXPECT_EQ(constant_schedule(3.0)(7), 3.0);
}

TEST(Schedule, LinearClipsAtBothEnds) {
  const Schedule s = linear_schedule(1.0, 0.01, 100);
  EXPECT_DOUBLE_EQ(s(0), 1.0);
  EXPECT_DOUBLE_EQ(s(50), 0.505);
  EXPECT_DOUBLE_EQ(s(100), 0.01);
  EXPECT_DOUBLE_EQ(s(1000), 0.01);
  const Schedule late = linear_schedule(1.0, 0.0, 10, 5);
  EXPECT_DOUBLE_EQ(late(5), 1.0);
  EXPECT_DOUBLE_EQ(late(10), 0.5);
  EXPECT_DOUBLE_EQ(linear_schedule(2.0, 0.0, 0)(9), 2.0);  // no transition: init_value
}

TEST(Schedule, CosineDecay) {
  const Schedule s = cosine_decay_schedule(2.0, 100, 0.1);
  EXPECT_DOUBLE_EQ(s(0), 2.0);
  EXPECT_DOUBLE_EQ(s(50), 2.0 * (0.9 * 0.5 + 0.1));
  EXPECT_DOUBLE_EQ(s(100), 0.2);
  EXPECT_DOUBLE_EQ(s(150), 0.2);
  EXPECT_NEAR(cosine_decay_schedule(1.0, 10, 0.0, 2.0)(5), 0.25, 1e-15);  // exponent
  EXPECT_THAT(error_of([] { cosine_decay_schedule(1.0, 0); }),
              HasSubstr("cosine_decay_schedule: decay_steps = 0 must be > 0"));
}

// optax.warmup_cosine_decay_schedule, written out.
double optax_warmup_cosine(double init, double peak, int warmup, int decay, double end, int t) {
  if (t < warmup) return init + (peak - init) * t / warmup;
  const double alpha = peak == 0 ? 0 : end / peak;
  const double steps = decay - warmup;
  const double c = std::min<double>(t - warmup, steps);
  return peak * ((1 - alpha) * 0.5 * (1 + std::cos(std::numbers::pi * c / steps)) + alpha);
}

TEST(Schedule, WarmupCosineDecayAtKnownSteps) {
  // peak 1, warmup 10, decay_steps 110 (the warmup included), end 0.1.
  const Schedule s = warmup_cosine_decay(1.0, 10, 110, 0.1);
  EXPECT_DOUBLE_EQ(s(0), 0.0);
  EXPECT_DOUBLE_EQ(s(5), 0.5);
  EXPECT_DOUBLE_EQ(s(10), 1.0);
  EXPECT_DOUBLE_EQ(s(60), 0.55);  // halfway through the cosine: 0.1 + 0.9 · 0.5
  EXPECT_DOUBLE_EQ(s(110), 0.1);
  EXPECT_DOUBLE_EQ(s(500), 0.1);
  for (int t = 0; t <= 120; ++t) {
    EXPECT_NEAR(s(t), optax_warmup_cosine(0.0, 1.0, 10, 110, 0.1, t), 1e-15) << t;
    EXPECT_NEAR(warmup_cosine_decay(3e-3, 7, 50, 0.0, 1e-4)(t),
                optax_warmup_cosine(1e-4, 3e-3, 7, 50, 0.0, t), 1e-15)
        << t;
  }
  EXPECT_DOUBLE_EQ(warmup_cosine_decay(2.0, 0, 4)(0), 2.0);  // no warmup: starts at the peak
  EXPECT_EQ(s.to_string(), "warmup_cosine_decay(init=0, peak=1, warmup=10, decay=110, end=0.1)");
  EXPECT_THAT(error_of([] { warmup_cosine_decay(1.0, 10, 10); }),
              HasSubstr("warmup_cosine_decay: decay_steps = 10 must be > warmup_steps = 10"));
  EXPECT_THAT(error_of([] { warmup_cosine_decay(1.0, -1, 10); }),
              HasSubstr("warmup_steps = -1 must be >= 0"));
}

}  // namespace
}  // namespace datarax::optim
