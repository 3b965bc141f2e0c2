#include "datarax/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <charconv>
#include <string>
#include <utility>

#include "datarax/error.h"

namespace datarax::optim {

namespace {

// "name(a=1, b=0.5)" with shortest round-trip numbers.
std::string describe(std::string_view name,
                     std::initializer_list<std::pair<std::string_view, double>> args) {
  std::string out(name);
  out += "(";
  bool first = true;
  for (const auto& [key, value] : args) {
    char buf[32];
    const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
    out += (first ? "" : ", ") + std::string(key) + "=" + std::string(buf, end);
    first = false;
  }
  return out + ")";
}

}  // namespace

Schedule::Schedule(double value)
    : fn_([value](std::int64_t) { return value; }), description_(describe("constant", {{"value", value}})) {}

Schedule::Schedule(std::function<double(std::int64_t)> fn, std::string description)
    : fn_(std::move(fn)), description_(std::move(description)) {
  if (!fn_) throw InvalidArgumentError("Schedule: the function is empty");
}

Schedule constant_schedule(double value) { return Schedule(value); }

Schedule linear_schedule(double init_value, double end_value, std::int64_t transition_steps,
                         std::int64_t transition_begin) {
  std::string text = describe("linear", {{"init", init_value},
                                         {"end", end_value},
                                         {"steps", static_cast<double>(transition_steps)},
                                         {"begin", static_cast<double>(transition_begin)}});
  if (transition_steps <= 0)
    return Schedule([init_value](std::int64_t) { return init_value; }, std::move(text));
  const std::int64_t begin = std::max<std::int64_t>(transition_begin, 0);
  return Schedule(
      [=](std::int64_t count) {
        const double t =
            static_cast<double>(std::clamp<std::int64_t>(count - begin, 0, transition_steps));
        const double frac = 1.0 - t / static_cast<double>(transition_steps);
        return (init_value - end_value) * frac + end_value;
      },
      std::move(text));
}

Schedule cosine_decay_schedule(double init_value, std::int64_t decay_steps, double alpha,
                               double exponent) {
  if (decay_steps <= 0)
    throw InvalidArgumentError("cosine_decay_schedule: decay_steps = " +
                               std::to_string(decay_steps) + " must be > 0");
  return Schedule(
      [=](std::int64_t count) {
        const double t = static_cast<double>(std::clamp<std::int64_t>(count, 0, decay_steps));
        const double cosine =
            0.5 * (1.0 + std::cos(std::numbers::pi * t / static_cast<double>(decay_steps)));
        return init_value * ((1.0 - alpha) * std::pow(cosine, exponent) + alpha);
      },
      describe("cosine_decay", {{"init", init_value},
                                {"decay", static_cast<double>(decay_steps)},
                                {"alpha", alpha},
                                {"exponent", exponent}}));
}

Schedule warmup_cosine_decay(double peak_value, std::int64_t warmup_steps,
                             std::int64_t decay_steps, double end_value, double init_value) {
  if (warmup_steps < 0)
    throw InvalidArgumentError("warmup_cosine_decay: warmup_steps = " +
                               std::to_string(warmup_steps) + " must be >= 0");
  if (decay_steps <= warmup_steps)
    throw InvalidArgumentError("warmup_cosine_decay: decay_steps = " + std::to_string(decay_steps) +
                               " must be > warmup_steps = " + std::to_string(warmup_steps) +
                               " (decay_steps counts the warmup too, as in optax)");
  const double alpha = peak_value == 0.0 ? 0.0 : end_value / peak_value;
  const Schedule warmup = linear_schedule(init_value, peak_value, warmup_steps);
  const Schedule decay = cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha);
  // optax.join_schedules: before the boundary the first, from it on the second at count − boundary.
  return Schedule(
      [=](std::int64_t count) {
        return count < warmup_steps ? warmup(count) : decay(count - warmup_steps);
      },
      describe("warmup_cosine_decay", {{"init", init_value},
                                       {"peak", peak_value},
                                       {"warmup", static_cast<double>(warmup_steps)},
                                       {"decay", static_cast<double>(decay_steps)},
                                       {"end", end_value}}));
}

}  // namespace datarax::optim
