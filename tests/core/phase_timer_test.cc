// PhaseTimer: every interval between marks is charged to the phase it was in, once; take() zeroes.
#include "datarax/phase_timer.h"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>

namespace datarax {
namespace {

using namespace std::chrono_literals;

double total(const std::array<double, kPhaseCount>& s) { return std::accumulate(s.begin(), s.end(), 0.0); }

TEST(PhaseTimer, ChargesEachIntervalToThePhaseItWasIn) {
  PhaseTimer t;
  t.enter(Phase::forward_gemm);
  t.take();  // from here on
  const auto start = PhaseTimer::Clock::now();
  t.enter(Phase::optimizer);  // the forward_gemm interval: no sleep
  std::this_thread::sleep_for(20ms);
  t.enter(Phase::collectives);
  std::this_thread::sleep_for(10ms);
  t.enter(Phase::forward_gemm);
  const auto end = PhaseTimer::Clock::now();
  const auto s = t.take();
  // sleep_for sleeps at least as long as asked: lower bounds only (no upper bound on a busy CI).
  EXPECT_GE(s[static_cast<std::size_t>(Phase::optimizer)], 0.020);
  EXPECT_GE(s[static_cast<std::size_t>(Phase::collectives)], 0.010);
  EXPECT_EQ(s[static_cast<std::size_t>(Phase::loss)], 0.0);
  // Every interval is charged once: the phases add up to no more than the wall time around them,
  // and to at least the time slept.
  EXPECT_LE(total(s), std::chrono::duration<double>(end - start).count() + 1e-3);
  EXPECT_GE(total(s), 0.030);
  // take() zeroed the sums; the time since the last mark goes to the next one.
  std::this_thread::sleep_for(5ms);
  t.enter(Phase::metrics);
  const auto s2 = t.take();
  EXPECT_GE(s2[static_cast<std::size_t>(Phase::forward_gemm)], 0.005);
  EXPECT_EQ(s2[static_cast<std::size_t>(Phase::optimizer)], 0.0);
}

TEST(PhaseTimer, MarkWithoutATimerDoesNothingAndPhasesHaveNames) {
  mark(nullptr, Phase::loss);  // no timer: no effect, no crash
  EXPECT_EQ(to_string(Phase::batch_wait), "batch_wait");
  EXPECT_EQ(to_string(Phase::backward_elementwise), "backward_elementwise");
  EXPECT_EQ(to_string(Phase::other), "other");
  EXPECT_EQ(static_cast<std::size_t>(Phase::other) + 1, kPhaseCount);
}

}  // namespace
}  // namespace datarax
