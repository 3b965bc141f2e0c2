// Learning-rate schedules: functions from the optimizer's step count (0 for the first update) to a
// value, with optax's formulas (optax/schedules/_schedule.py).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace datarax::optim {

class Schedule {
 public:
  // A number is a constant schedule, so `sgd(0.1)` reads as in optax.
  Schedule(double value);  // implicit on purpose
  // Any function of the count; `description` is what to_string() gives.
  Schedule(std::function<double(std::int64_t count)> fn, std::string description);

  double operator()(std::int64_t count) const { return fn_(count); }
  // "constant(value=0.1)", "warmup_cosine_decay(init=0, peak=0.001, warmup=100, decay=1000, end=0)"
  const std::string& to_string() const { return description_; }

 private:
  std::function<double(std::int64_t)> fn_;
  std::string description_;
};

Schedule constant_schedule(double value);

// optax.linear_schedule: init_value until transition_begin, then linear to end_value over
// transition_steps, then end_value. transition_steps <= 0 gives the constant init_value (as optax).
//   v(t) = init + (end − init) · clip(t − begin, 0, steps) / steps
Schedule linear_schedule(double init_value, double end_value, std::int64_t transition_steps,
                         std::int64_t transition_begin = 0);

// optax.cosine_decay_schedule: decay_steps > 0 (InvalidArgumentError otherwise).
//   v(t) = init · ((1 − alpha) · (½ (1 + cos(π · min(t, decay) / decay)))^exponent + alpha)
Schedule cosine_decay_schedule(double init_value, std::int64_t decay_steps, double alpha = 0.0,
                               double exponent = 1.0);

// optax.warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps, end_value):
// linear from init_value to peak_value over warmup_steps, then a cosine decay from peak_value to
// end_value over decay_steps − warmup_steps (decay_steps INCLUDES the warmup, as in optax), then
// end_value. Needs warmup_steps >= 0 and decay_steps > warmup_steps.
//   t <  warmup:  init + (peak − init) · t / warmup
//   t >= warmup:  cosine_decay_schedule(peak, decay − warmup, alpha = end / peak)(t − warmup)
//                 (alpha = 0 when peak = 0)
Schedule warmup_cosine_decay(double peak_value, std::int64_t warmup_steps,
                             std::int64_t decay_steps, double end_value = 0.0,
                             double init_value = 0.0);

}  // namespace datarax::optim
