// The optimizer step with sharded optimizer state (ZeRO stage 1).
//
// Replicated data parallelism has every device all-reduce the whole gradient and then run the
// optimizer over every parameter, n times the same work. Here device r of n instead:
//   1. reduce-scatters the gradients (mean over the data axis), keeping slice r only;
//   2. runs the optimizer on slice r, with optimizer state for that slice alone (1/n the memory);
//   3. all-gathers the updated parameter slices, so every device again holds all the parameters.
// The bytes moved are those of one all-reduce (which is a reduce-scatter plus an all-gather), the
// optimizer's work and state shrink n-fold, and the arithmetic is element for element that of
// the replicated step: results are bitwise identical to it.
//
// Parameters and gradients live in flat buffers (leaves are views, in key order), padded to a
// multiple of 16·n elements so that slices stay cache-line aligned; the padding stays zero.
#pragma once

#include <optional>

#include "datarax/array.h"
#include "datarax/collectives.h"
#include "datarax/optim/optimizer.h"
#include "datarax/tree.h"

namespace datarax::train::detail {

class ShardedOptimizerStep {
 public:
  // Moves the replica `params` into a flat buffer (its leaves become views of it) and makes
  // `grads` views of a flat gradient buffer, for device `rank` of `n` on the data axis.
  ShardedOptimizerStep(const optim::Optimizer& optimizer, Tree& params, Tree& grads, int rank, int n);

  // Inside SPMD, after the gradients were written: steps 1-3 above, with optional clipping by the
  // global norm (computed across the slices).
  void step(std::optional<double> clip_norm, const AxisNames& axis);

 private:
  const optim::Optimizer& optimizer_;
  Array flat_params_, flat_grads_, grad_slice_, norm_;
  Tree slice_params_, slice_grads_, slice_state_;
};

}  // namespace datarax::train::detail
