// check_gradients: a loss function's gradients (value_and_grad) against central differences, in
// f64 — for your own ops and models, as the library's tests check its own.
//
//   auto report = nn::check_gradients(model, loss_fn, batch);
//   EXPECT_TRUE(report.passed) << report.to_string();
//
// Parameters and float batch leaves are converted to f64; up to max_checks_per_leaf elements of
// each parameter (all of a small one; evenly spread otherwise) are moved by ±eps and the loss
// recomputed. A leaf passes when max |analytic − numeric| ≤ tolerance · max(1, max |numeric|).
// Non-smooth points (relu at 0, max-pool ties) can fail honestly: keep test inputs away from them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datarax/nn/module.h"
#include "datarax/nn/value_and_grad.h"
#include "datarax/tree.h"

namespace datarax::nn {

struct GradientCheckOptions {
  double eps = 1e-6;
  double tolerance = 1e-6;
  std::int64_t max_checks_per_leaf = 64;
};

struct GradientCheckReport {
  struct Leaf {
    std::string key;
    std::int64_t checked = 0;
    double max_abs_diff = 0;     // max |analytic − numeric| over the checked elements
    double max_abs_numeric = 0;  // max |numeric|
    bool passed = true;
  };
  std::vector<Leaf> leaves;
  bool passed = true;
  // One line per leaf: key, elements checked, largest difference, scale, pass/FAIL.
  std::string to_string() const;
};

GradientCheckReport check_gradients(const LossFn& loss_fn, const Tree& params, const Tree& batch,
                                    const GradientCheckOptions& options = {});
// With the model's parameters drawn from `seed` in f64.
GradientCheckReport check_gradients(const Module& model, const LossFn& loss_fn, const Tree& batch,
                                    std::uint64_t seed = 0, const GradientCheckOptions& options = {});

}  // namespace datarax::nn
