// Helpers for the op tests: arrays from doubles, values back as doubles, and a gradient check of
// one op through the public check_gradients.
//
// check_op's loss is Σ op(params, batch) ⊙ w with w fixed uniform(−1, 1) weights (a constant of
// the recording), so every output element's gradient is checked with a different weight and an
// op whose backward mixed up elements would fail.
//
// Tolerance (kGradTol = 1e-7, relative to max(1, max |numeric|)): the checks run in f64 with
// eps = 1e-6. Central differences err by eps² · f‴ / 6 ≈ 1e-13 (truncation) plus about
// 1e-16 · |loss| / eps ≈ 1e-10 · |loss| (rounding); our losses stay below ~30, so honest
// gradients differ by a few 1e-9 (measured: at most 4.7e-9 over every check in this binary,
// against a limit of 1e-7 · max(1, max |numeric|) ≥ 1e-7), while a backward off by one part in
// 10⁵ (1.2e-5 here) or missing a term fails: `GradientCheck.FailsOnAWrongBackward` shows both.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "datarax/array.h"
#include "datarax/nn/check_gradients.h"
#include "datarax/nn/graph.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/reduce.h"
#include "nn/gradcheck.h"

namespace datarax::nn::test {

inline constexpr double kGradTol = 1e-7;

inline Array array(Shape shape, const std::vector<double>& v, DType dtype = DType::f64) {
  Array a = Array::empty(std::move(shape), dtype);
  if (dtype == DType::f64)
    for (std::size_t i = 0; i < v.size(); ++i) a.data<double>()[i] = v[i];
  else
    for (std::size_t i = 0; i < v.size(); ++i) a.data<float>()[i] = static_cast<float>(v[i]);
  return a;
}

inline Array random(Shape shape, std::uint64_t seed, DType dtype = DType::f64, double lo = -1, double hi = 1) {
  const auto n = static_cast<std::size_t>(shape.numel());
  return array(std::move(shape), uniform(n, lo, hi, seed), dtype);
}

inline Array ints(Shape shape, std::vector<std::int32_t> v) { return Array::from_values<std::int32_t>(std::move(shape), std::move(v)); }

inline std::vector<double> values(const Array& a) {
  if (a.dtype() == DType::f64) return {a.data<double>().begin(), a.data<double>().end()};
  return {a.data<float>().begin(), a.data<float>().end()};
}

using OpFn = std::function<Var(const VarTree& params, const VarTree& batch)>;

inline GradientCheckReport check_op(const OpFn& op, const Tree& params, const Tree& batch = {},
                                    std::int64_t max_checks = 64, double tolerance = kGradTol) {
  auto loss = [op](const VarTree& p, const VarTree& b) {
    Var y = op(p, b);
    const auto n = static_cast<std::size_t>(y.shape().numel());
    Var w = y.graph().constant(array(y.shape(), uniform(n, -1, 1, 977), y.dtype()));
    return sum(mul(y, w));
  };
  GradientCheckReport r = check_gradients(loss, params, batch, {.tolerance = tolerance, .max_checks_per_leaf = max_checks});
  std::printf("%s", r.to_string().c_str());
  return r;
}

// max |a − b| over the elements.
inline double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = a.size() == b.size() ? 0 : INFINITY;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

}  // namespace datarax::nn::test
