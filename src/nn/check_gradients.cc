// check_gradients (check_gradients.h).
#include "datarax/nn/check_gradients.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "datarax/error.h"

namespace datarax::nn {

namespace {

Tree to_f64(const Tree& t) {
  return t.map([](const Array& a) { return a.dtype() == DType::f32 ? a.astype(DType::f64) : a.copy(); });
}

}  // namespace

std::string GradientCheckReport::to_string() const {
  std::string out;
  char line[512];
  for (const Leaf& l : leaves) {
    std::snprintf(line, sizeof line, "%-32s %6lld checked  max |analytic - numeric| %.3e  max |numeric| %.3e  %s\n",
                  l.key.c_str(), static_cast<long long>(l.checked), l.max_abs_diff, l.max_abs_numeric,
                  l.passed ? "ok" : "FAIL");
    out += line;
  }
  return out;
}

GradientCheckReport check_gradients(const LossFn& loss_fn, const Tree& params, const Tree& batch,
                                    const GradientCheckOptions& options) {
  if (!(options.eps > 0) || !std::isfinite(options.eps))
    throw InvalidArgumentError("check_gradients: eps " + std::to_string(options.eps) + " must be > 0 and finite");
  if (!(options.tolerance >= 0))
    throw InvalidArgumentError("check_gradients: tolerance " + std::to_string(options.tolerance) + " must be >= 0");
  if (options.max_checks_per_leaf < 1)
    throw InvalidArgumentError("check_gradients: max_checks_per_leaf " + std::to_string(options.max_checks_per_leaf) +
                               " must be >= 1");
  for (const auto& [key, a] : params)
    if (a.dtype() != DType::f32 && a.dtype() != DType::f64)
      throw DTypeError("check_gradients: parameter \"" + key + "\" has dtype " + std::string(datarax::to_string(a.dtype())) +
                       "; valid: f32, f64");
  Tree p = to_f64(params);
  const Tree b = to_f64(batch);
  ValueAndGrad vg(loss_fn);
  const Tree analytic = vg(p, b).grads.map([](const Array& a) { return a.copy(); });

  GradientCheckReport report;
  for (auto& [key, leaf] : p) {
    GradientCheckReport::Leaf r{.key = key};
    std::span<double> x = leaf.data<double>();
    std::span<const double> g = analytic.at(key).data<double>();
    const std::int64_t n = static_cast<std::int64_t>(x.size());
    const std::int64_t checks = std::min(n, options.max_checks_per_leaf);
    std::vector<double> numeric(static_cast<std::size_t>(checks));
    for (std::int64_t c = 0; c < checks; ++c) {
      const auto i = static_cast<std::size_t>(checks == n ? c : c * n / checks);
      const double saved = x[i];
      x[i] = saved + options.eps;
      const double up = vg.value(p, b);
      x[i] = saved - options.eps;
      const double down = vg.value(p, b);
      x[i] = saved;
      const double num = (up - down) / (2 * options.eps);
      r.max_abs_diff = std::max(r.max_abs_diff, std::abs(num - g[i]));
      if (!std::isfinite(num) || !std::isfinite(g[i])) r.max_abs_diff = INFINITY;
      r.max_abs_numeric = std::max(r.max_abs_numeric, std::abs(num));
      ++r.checked;
    }
    r.passed = r.max_abs_diff <= options.tolerance * std::max(1.0, r.max_abs_numeric);
    report.passed = report.passed && r.passed;
    report.leaves.push_back(std::move(r));
  }
  return report;
}

GradientCheckReport check_gradients(const Module& model, const LossFn& loss_fn, const Tree& batch, std::uint64_t seed,
                                    const GradientCheckOptions& options) {
  return check_gradients(loss_fn, model.init(seed, DType::f64), batch, options);
}

}  // namespace datarax::nn
