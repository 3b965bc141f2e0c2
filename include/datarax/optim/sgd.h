// Stochastic gradient descent, optionally with (Nesterov) momentum: optax.sgd.
//
//   plain (momentum 0):  update = −lr(count) · g                      state: count
//   momentum m:          trace  = g + m · trace
//                        update = −lr(count) · trace                   state: count, trace/<key>
//   Nesterov:            update = −lr(count) · (g + m · trace)         (with the new trace)
#pragma once

#include <memory>

#include "datarax/optim/optimizer.h"

namespace datarax::optim {

struct SgdOptions {
  Schedule learning_rate = 1e-2;
  double momentum = 0.0;  // >= 0; 0 keeps no trace
  bool nesterov = false;  // needs momentum > 0
};

class Sgd final : public Optimizer {
 public:
  // InvalidArgumentError naming the field for momentum < 0 or nesterov without momentum.
  explicit Sgd(SgdOptions options);

  std::string_view name() const override { return "sgd"; }
  Tree init(const Tree& params) const override;
  void update(Tree& grads_in_updates_out, Tree& state, const Tree& params) const override;

  const SgdOptions& options() const { return options_; }

 private:
  SgdOptions options_;
};

// optax.sgd(learning_rate, momentum, nesterov), momentum 0 meaning optax's None.
std::unique_ptr<Optimizer> sgd(Schedule learning_rate, double momentum = 0.0,
                               bool nesterov = false);

}  // namespace datarax::optim
