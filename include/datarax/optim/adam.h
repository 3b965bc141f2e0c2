// Adam and AdamW (decoupled weight decay): optax.adam / optax.adamw.
//
// With t = count + 1 (the update being made):
//   mu     = b1 · mu + (1 − b1) · g
//   nu     = b2 · nu + (1 − b2) · g²
//   u      = (mu / (1 − b1^t)) / (√(nu / (1 − b2^t) + eps_root) + eps)
//   u     += weight_decay · param         (AdamW only; every leaf unless weight_decay_mask says no)
//   update = −lr(count) · u
// state: count, mu/<key>, nu/<key>.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "datarax/optim/optimizer.h"

namespace datarax::optim {

struct AdamOptions {
  Schedule learning_rate = 1e-3;
  double b1 = 0.9;        // in [0, 1)
  double b2 = 0.999;      // in [0, 1)
  double eps = 1e-8;      // >= 0
  double eps_root = 0.0;  // >= 0
  // Decoupled weight decay (>= 0): 0 is Adam, > 0 AdamW.
  double weight_decay = 0.0;
  // Which parameters decay: called with each key; empty (the default, as optax.adamw's mask=None)
  // decays every parameter, biases included.
  std::function<bool(std::string_view key)> weight_decay_mask = nullptr;
};

class Adam final : public Optimizer {
 public:
  // InvalidArgumentError naming the field for values out of the ranges above.
  explicit Adam(AdamOptions options);

  // "adamw" when weight_decay > 0, else "adam".
  std::string_view name() const override;
  Tree init(const Tree& params) const override;
  void update(Tree& grads_in_updates_out, Tree& state, const Tree& params) const override;
  // One pass: the moments, the update and params += update per element (grads left as they were).
  void update_and_apply(Tree& grads, Tree& state, Tree& params) const override;

  const AdamOptions& options() const { return options_; }

 private:
  // update() when apply_to is null; else update_and_apply() into *apply_to (which is params).
  void step(Tree& grads, Tree& state, const Tree& params, Tree* apply_to) const;

  AdamOptions options_;
};

// optax.adam(learning_rate, b1, b2, eps).
std::unique_ptr<Optimizer> adam(Schedule learning_rate, double b1 = 0.9, double b2 = 0.999,
                                double eps = 1e-8);
// optax.adamw(learning_rate, b1, b2, eps, weight_decay = 1e-4): every parameter decays.
std::unique_ptr<Optimizer> adamw(Schedule learning_rate, double b1 = 0.9, double b2 = 0.999,
                                 double eps = 1e-8, double weight_decay = 1e-4);

}  // namespace datarax::optim
