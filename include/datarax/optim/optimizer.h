// Optimizers in the optax shape: init(params) -> state; update(grads, state, params) -> updates
// and the next state; apply_updates(params, updates) adds them. Here update works IN PLACE (the
// gradients become the updates, the state advances) so that a training step allocates nothing.
//
// State layout (a Tree, so a train state can be checkpointed like the parameters):
//   count          i64 scalar: the number of updates made so far; schedules read it (0 first)
//   <buffer>/<k>   one per parameter key k and per buffer the optimizer keeps (sgd with momentum:
//                  trace/k; adam, adamw: mu/k and nu/k), same shape and dtype as the parameter
//
// Every optimizer here is elementwise: it works on any Tree whose grads, state and params match
// leaf for leaf, so a device can update just its slice of the parameters (ZeRO-1) with the
// state init() made from that slice. Global-norm clipping is not elementwise: it lives apart, in
// clip.h, to be applied before update (with the global norm when the state is sharded).
//
// Leaves may be f32 or f64 (DTypeError otherwise); an optimizer is immutable after construction,
// so one instance may serve every device thread at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "datarax/optim/schedule.h"
#include "datarax/tree.h"

namespace datarax::optim {

// The result of the pure Optimizer::update_copy.
struct UpdateResult {
  Tree updates;
  Tree state;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // "sgd", "adam", "adamw".
  virtual std::string_view name() const = 0;

  // A fresh state for params: count 0 and zeroed buffers.
  virtual Tree init(const Tree& params) const = 0;

  // grads_in_updates_out: the gradients, replaced by the updates (to add to the parameters);
  // state: advanced one step (count + 1), in place. params is read by adamw only (weight decay)
  // and may be an empty Tree for the others. grads must have the parameters' keys, shapes and
  // dtypes, and state must come from init() of such parameters (KeyError / InvalidArgumentError
  // naming the leaf otherwise). No allocation.
  virtual void update(Tree& grads_in_updates_out, Tree& state, const Tree& params) const = 0;

  // update() then apply_updates(params, updates), with the same result bit for bit; an optimizer
  // may do both in one pass over its buffers (Adam does: 7 streams of memory instead of 10), and
  // then grads is left with unspecified contents. The trainer's step calls this.
  virtual void update_and_apply(Tree& grads, Tree& state, Tree& params) const;

  // The pure form: copies of grads and state, updated; the arguments are left alone.
  UpdateResult update_copy(const Tree& grads, const Tree& state, const Tree& params) const;
};

// params += updates, leaf by leaf (same keys, shapes and dtypes). In place; no allocation.
void apply_updates(Tree& params, const Tree& updates);
// The pure form: new parameters; the arguments are left alone.
Tree apply_updates_copy(const Tree& params, const Tree& updates);

// The "count" leaf of a state made by any optimizer here.
std::int64_t step_count(const Tree& state);

// Every hyperparameter of the optimizers make_optimizer knows; each reads its own fields and
// ignores the rest.
struct OptimizerOptions {
  Schedule learning_rate = 1e-3;
  double momentum = 0.0;   // sgd: 0 = plain SGD, no trace kept
  bool nesterov = false;   // sgd: needs momentum > 0
  double b1 = 0.9;         // adam, adamw
  double b2 = 0.999;       // adam, adamw
  double eps = 1e-8;       // adam, adamw
  double eps_root = 0.0;   // adam, adamw
  double weight_decay = 1e-4;  // adamw (optax.adamw's default); decays every parameter
};

// The optimizer called `name` ("sgd", "adam", "adamw"); InvalidArgumentError listing them for any
// other name, or for options out of range.
std::unique_ptr<Optimizer> make_optimizer(std::string_view name,
                                          const OptimizerOptions& options = {});

// The names make_optimizer accepts.
std::span<const std::string_view> optimizer_names();

}  // namespace datarax::optim
