// Step: one device's part of a training step for any model, the same code for every layout —
// replicated data parallelism, ZeRO stages 1 to 3 over "data", tensor parallelism over "model"
// (by the parameters' sharding specs) and their combinations (train/param_units.h):
//
//   forward + backward  the model's loss (train/model.h), recorded once on this device's blocks
//                       of the parameters and replayed (nn/graph.h); the parameters are read
//                       from ParamUnits' buffers and the gradients written into them — at stage
//                       3 a group is gathered just before its first use, from stage 2 its
//                       gradients are reduce-scattered as soon as backward has finished them
//                       (GraphHooks), overlapping the rest of backward's work
//   reduce gradients    stage 0: all-reduce (mean) over "data" per bucket; stage 1: reduce-scatter
//   clip                by the global norm: the squares of what this device updates, summed over
//                       "data" (slices) and over "model" (the blocks tensor parallelism splits)
//   optimizer           on what this device updates: every element, or its slices
//   gather              stages 1 and 2: the updated slices all-gathered into the whole units
//
// Evaluation replays the model's evaluation loss (Model::eval_loss), recorded apart and forward
// only on the same buffers, or the training loss' forward where the model has none.
//
// Nothing allocates per step once the first step has recorded the computation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datarax/nn/graph.h"
#include "datarax/nn/precision.h"
#include "datarax/optim/optimizer.h"
#include "datarax/phase_timer.h"
#include "datarax/train/model.h"
#include "datarax/tree.h"
#include "train/param_units.h"

namespace datarax::train::detail {

struct StepSettings {
  const optim::Optimizer* optimizer = nullptr;  // shared by every device (immutable)
  std::optional<double> clip_norm;
  UnitsSettings units;
  int model_size = 1;  // devices on the model axis
  nn::Precision precision = nn::Precision::f32;
  bool time_phases = false;  // phase_timer() marks the step's phases
};

struct EvalTotals {
  double loss_sum = 0, correct = 0, count = 0;
};

class Step : private nn::GraphHooks {
 public:
  // `params`: this device's blocks of the initial parameters (the placed state's local tree);
  // `split`: the keys tensor parallelism splits; `rank` of `n`: this device's place on the data
  // axis. `opt_state`: this device's blocks of an optimizer state to continue from ("count" and
  // "<buffer>/<param key>", like local_optimizer_state()), or null for a fresh one.
  Step(const Model& model, const Tree& params, const std::vector<std::string>& split, const StepSettings& settings,
       int rank, int n, const Tree* opt_state = nullptr);
  ~Step() override;

  struct Result {
    double loss = 0;     // averaged over the data axis' devices it is the global batch's loss
    double correct = 0;  // correct predictions in this device's rows
  };
  // Inside SPMD, on this device: one training step on its shard `batch` (the data set's fields,
  // "mask", "count", "step" and "first_example": train/model.h). Collective over the mesh.
  Result run(const Tree& batch);
  // Records the computation (and the evaluation loss', if the model has one) on a batch of the
  // step's shapes (its values do not matter), if not yet: every buffer then exists (held_bytes()
  // counts them) before the first step. Collective.
  void prepare(const Tree& batch);

  // The evaluation loss (with count 1: a sum) and correct predictions over evaluation batches,
  // forward only (collective over "model", and over "data" at stage 3, where groups are
  // gathered: every device must pass the same number of batches).
  EvalTotals evaluate(const std::vector<Tree>& batches);

  // This device's blocks of the parameters, and of the optimizer state ("count",
  // "<buffer>/<param key>"), whole over "data": copies (collective over "data" from stage 1 on).
  Tree local_params() { return units_.local_params(); }
  Tree local_optimizer_state();

  // Bytes this device holds: parameters, gradients, optimizer state, gathered groups in flight.
  DeviceBytes held_bytes() const;

  // The timer the step marks its phases on (StepSettings::time_phases), or null.
  PhaseTimer* phase_timer() { return timer_; }

 private:
  // One recorded loss: its graph, the leaves the parameters and the batch are bound to, the loss
  // and the values it exposed (nn::expose).
  struct Recording {
    std::unique_ptr<nn::Graph> graph;
    std::vector<nn::Var> params, batch;
    nn::Var loss;
    Tree outputs;
  };
  // Stage 3 gathers the evaluation recording's groups through these (the training one's hooks
  // are the Step's own).
  struct EvalHooks : nn::GraphHooks {
    ParamUnits* units = nullptr;
    std::vector<std::vector<int>> gather;  // by node: the groups to gather before it
    void before_forward(int node) override;
  };

  void record(const Tree& batch);
  // `fn` recorded on placeholders of the parameters and on `batch`; the parameters are
  // parameter leaves when `trained` (gradients), inputs otherwise (forward only: no gradient
  // buffers). `what` names it in messages.
  Recording record_loss(const nn::LossFn& fn, const Tree& batch, bool trained, const char* what);
  // By node of `r`'s graph: the index of the parameter it is, or -1.
  std::vector<int> param_keys(const Recording& r) const;
  void bind_batch(Recording& r, const Tree& batch);
  void before_forward(int node) override;
  void before_backward(int node) override;
  void after_backward(int node) override;
  void clip(double max_norm);
  void load_optimizer_state(const Tree& local);
  // The optimizer state's buffers ("mu", "nu", ...): the first segments of its keys.
  std::vector<std::string> state_buffers() const;

  const Model& model_;
  StepSettings settings_;
  int n_;
  std::vector<std::string> keys_;  // the parameters, in the Tree's order
  std::vector<Shape> shapes_;      // their blocks' shapes
  std::vector<int> group_;         // by key: its group (top-level submodule)
  ParamUnits units_;
  Recording train_;
  Recording eval_;  // Model::eval_loss's, when the model has one (else evaluation replays train_)
  EvalHooks eval_hooks_;
  std::vector<std::string> batch_keys_;  // the recorded batch's leaves, in order
  std::vector<bool> unused_;                      // by key: no op reads it
  std::vector<std::vector<int>> gather_fwd_, gather_bwd_, done_bwd_;  // by node: the groups to act on
  std::vector<Phase> fwd_phase_, bwd_phase_;      // by node: its phase (time_phases)
  Tree opt_state_;
  Array norm_;  // the clip norm's partial sums, reduced in place
  PhaseTimer timer_storage_;
  PhaseTimer* timer_ = nullptr;
};

}  // namespace datarax::train::detail
