// Step: one device's part of a training step, the same code for every layout — replicated data
// parallelism, ZeRO stages 1 to 3 over "data", tensor parallelism over "model" and their
// combinations (train/param_units.h has the layouts and their collectives):
//
//   forward + backward  nn::ParallelMlp on this device's blocks of the layers (Megatron's
//                       all-reduces over "model" inside), its parameters from ParamUnits
//                       (gathered per layer at stage 3) and its gradients into them
//                       (reduce-scattered per layer from stage 2)
//   reduce gradients    stage 0: all-reduce (mean) over "data" per bucket; stage 1: reduce-scatter
//   clip                by the global norm: the squares of what this device updates, summed over
//                       "data" (slices) and over "model" (the blocks tensor parallelism splits)
//   optimizer           on what this device updates: every element, or its slices
//   gather              stages 1 and 2: the updated slices all-gathered into the whole units
//
// Elementwise arithmetic is the same in every layout, so they give the same losses (bitwise
// between stages 0 and 1, but for the clip norm's summation order). Nothing allocates per step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "datarax/nn/parallel_mlp.h"
#include "datarax/phase_timer.h"
#include "datarax/optim/optimizer.h"
#include "datarax/tree.h"
#include "train/param_units.h"

namespace datarax::train::detail {

struct StepSettings {
  const optim::Optimizer* optimizer = nullptr;  // shared by every device (immutable)
  std::optional<double> clip_norm;
  UnitsSettings units;
  int model_size = 1;  // devices on the model axis
  bool time_phases = false;  // phase_timer() marks the step's phases
};

class Step {
 public:
  // `params`: this device's blocks of the initial parameters (the placed state's local tree);
  // `rank` of `n`: this device's place on the data axis. Batches have up to `local_batch` rows.
  // `opt_state`: this device's blocks of an optimizer state to continue from ("count" and
  // "<buffer>/<param key>", like local_optimizer_state()), or null for a fresh one.
  Step(const nn::ParallelMlpConfig& model, std::int64_t local_batch, const Tree& params, const StepSettings& settings,
       int rank, int n, const Tree* opt_state = nullptr);

  struct Result {
    double loss = 0;     // the mean over the data axis' devices is the global batch's loss
    double correct = 0;  // correct predictions in this device's rows
  };
  // Inside SPMD, on this device: one training step on its shard `batch` ("inputs", "labels",
  // "mask"), of a global batch with `count` real examples. Collective over the mesh.
  Result run(const Tree& batch, double count);

  // Loss and accuracy totals over rows of a data set (collective over "model", and over "data" at
  // stage 3, where the layers are gathered).
  nn::EvalResult evaluate(const Array& inputs, const Array& labels) { return mlp_.evaluate(units_, inputs, labels); }

  // This device's blocks of the parameters, and of the optimizer state ("count",
  // "<buffer>/<param key>"), whole over "data": copies (collective over "data" from stage 1 on).
  Tree local_params() { return units_.local_params(); }
  Tree local_optimizer_state();

  // Bytes this device holds: parameters, gradients, optimizer state, gathered layers in flight.
  DeviceBytes held_bytes() const;

  // The timer the step marks its phases on (StepSettings::time_phases), or null.
  PhaseTimer* phase_timer() { return timer_; }

 private:
  void clip(double max_norm);
  void load_optimizer_state(const Tree& local);

  StepSettings settings_;
  int n_;
  nn::ParallelMlp<float> mlp_;
  ParamUnits units_;
  Tree opt_state_;
  Array norm_;  // the clip norm's partial sums, reduced in place
  PhaseTimer timer_storage_;
  PhaseTimer* timer_ = nullptr;
};

}  // namespace datarax::train::detail
