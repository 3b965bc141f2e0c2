// Step: one device's part of a training step, the same code for every layout of the optimizer's
// work (replicated, or ZeRO-1's slices):
//
//   forward + backward (nn::Mlp)      gradients written into one flat buffer per dtype
//   reduce the gradients over "data"  replicated: an in-place all-reduce (mean) per bucket;
//                                     ZeRO-1: a reduce-scatter into this device's slice
//   clip by the global norm           the norm of the owned range (the whole buffer, or the slice,
//                                     whose squares are summed over "data")
//   optimizer update                  on the owned range: the whole buffer, or the slice
//   ZeRO-1 only: all-gather           every device's updated slice into its whole parameters
//
// "Owned range" is the one difference between the layouts: [0, size) of each buffer when the
// optimizer state is replicated, slice `rank` of `n` when it is sharded. Elementwise arithmetic is
// the same in both, so they give the same losses (bitwise, but for the clip norm's summation
// order). The optimizer sees the owned range as one leaf per buffer ("buffer0", ...); its state
// therefore holds "mu/buffer0" and the like, which whole_optimizer_state() turns back into the
// parameters' keys. Nothing allocates per step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datarax/nn/mlp.h"
#include "datarax/optim/optimizer.h"
#include "datarax/tree.h"
#include "train/flat_tree.h"

namespace datarax::train::detail {

struct StepSettings {
  const optim::Optimizer* optimizer = nullptr;  // shared by every device (immutable)
  std::optional<double> clip_norm;
  bool shard_optimizer_state = false;   // ZeRO-1
  std::int64_t bucket_bytes = 0;        // replicated: all-reduce buckets of at most this; 0: one
  std::string data_axis = "data";
};

class Step {
 public:
  // `params`: this device's copy of the initial parameters (its block of the placed state);
  // `rank` of `n`: this device's position on the data axis. Batches have up to `local_batch` rows.
  // `opt_state`: a whole optimizer state to continue from (keyed like whole_optimizer_state(),
  // checked by the caller), or null for a fresh one.
  Step(const nn::MlpConfig& model, std::int64_t local_batch, const Tree& params, const StepSettings& settings,
       int rank, int n, const Tree* opt_state = nullptr);

  struct Result {
    double loss = 0;       // this device's share: the mean over devices is the global batch's loss
    double correct = 0;    // correct predictions in this device's rows
  };
  // Inside SPMD, on this device: one training step on its shard `batch` ("inputs", "labels",
  // "mask"), of a global batch with `count` real examples. Collective over the data axis.
  Result run(const Tree& batch, double count);

  // Loss and accuracy totals over rows of a data set (no collective).
  nn::EvalResult evaluate(const Array& inputs, const Array& labels) { return mlp_.evaluate(params(), inputs, labels); }

  // The parameters (views of the flat buffers; whole on every device).
  const Tree& params() const { return params_.tree(); }
  // The optimizer state keyed like the parameters ("count", "mu/dense_0/kernel", ...), whole: a
  // copy. With ZeRO-1, collective over the data axis (every device gathers the slices).
  Tree whole_optimizer_state();

 private:
  void reduce_gradients();
  void clip(double max_norm);
  void update();
  void load_optimizer_state(const Tree& whole);

  StepSettings settings_;
  int rank_, n_;
  std::int64_t multiple_ = 16;      // the flat buffers are padded to a multiple of this
  nn::Mlp mlp_;
  FlatTree params_, grads_;
  std::vector<Array> buckets_;      // replicated: views of the gradient buffers
  std::vector<Array> grad_slices_;  // ZeRO-1: this device's slice of each reduced gradient buffer
  Tree owned_params_, owned_grads_, opt_state_;
  Array norm_ = Array::zeros({1}, DType::f64);
};

}  // namespace datarax::train::detail
