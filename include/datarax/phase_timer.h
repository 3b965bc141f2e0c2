// PhaseTimer: where one device's training step spends its time, phase by phase.
//
// The timer is a stopwatch that is always in exactly one phase: enter(p) charges the time since
// the last enter to the phase it was in and switches to p. Code marks the start of each phase and
// nothing else, so every nanosecond between two reads is charged to exactly one phase and the
// phases add up to the wall time. One steady_clock read per mark (about 20 ns); the trainer marks
// about 30 times a step, and only when TrainConfig::time_phases asks for it. Not thread-safe: one
// timer per device thread.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string_view>

namespace datarax {

enum class Phase : unsigned char {
  batch_wait,            // waiting for the host to hand over the next batch (loading, sharding)
  forward_gemm,          // the layers' matrix products in forward (bias included)
  forward_elementwise,   // activations in forward
  loss,                  // softmax, cross-entropy, its gradient, the accuracy count
  backward_gemm,         // the layers' matrix products in backward (bias gradient included)
  backward_elementwise,  // activations' gradients in backward
  collectives,           // gradient reduction, parameter gathers (ZeRO, FSDP), tensor-parallel sums
  optimizer,             // clipping, the optimizer's update, applying it
  metrics,               // the step's loss and accuracy summed over the devices
  other,                 // anything not marked (before the first mark: nothing)
};
inline constexpr std::size_t kPhaseCount = 10;

std::string_view to_string(Phase phase);  // "batch_wait", "forward_gemm", ...

class PhaseTimer {
 public:
  using Clock = std::chrono::steady_clock;

  // Charges the time since the last mark to the current phase and switches to `phase`.
  void enter(Phase phase) {
    const Clock::time_point now = Clock::now();
    seconds_[static_cast<std::size_t>(current_)] += std::chrono::duration<double>(now - last_).count();
    last_ = now;
    current_ = phase;
  }
  // Seconds charged to each phase since the last take(), which zeroes them (the current phase and
  // its start stay: the time since the last mark is charged at the next one).
  std::array<double, kPhaseCount> take() {
    std::array<double, kPhaseCount> out = seconds_;
    seconds_.fill(0);
    return out;
  }

 private:
  std::array<double, kPhaseCount> seconds_{};
  Phase current_ = Phase::other;
  Clock::time_point last_ = Clock::now();
};

// Marks `phase` on `timer` when there is one: the form the library's hot paths use.
inline void mark(PhaseTimer* timer, Phase phase) {
  if (timer != nullptr) timer->enter(phase);
}

}  // namespace datarax
