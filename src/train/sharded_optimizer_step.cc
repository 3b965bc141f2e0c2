#include "train/sharded_optimizer_step.h"

#include <cmath>
#include <cstring>

#include "datarax/optim/clip.h"

namespace datarax::train::detail {

namespace {

// Leaves of `tree` as views of `flat` (in key order), after copying their values into it.
Tree rehome(const Tree& tree, Array& flat, bool copy_values) {
  Tree out;
  std::int64_t offset = 0;
  for (const auto& [key, leaf] : tree) {
    Array view = flat.slice(offset, offset + leaf.numel()).reshape(leaf.shape());
    if (copy_values) view.copy_from(leaf);
    out.set(key, view);
    offset += leaf.numel();
  }
  return out;
}

}  // namespace

ShardedOptimizerStep::ShardedOptimizerStep(const optim::Optimizer& optimizer, Tree& params, Tree& grads,
                                           int rank, int n)
    : optimizer_(optimizer) {
  std::int64_t total = 0;
  for (const auto& [key, leaf] : params) total += leaf.numel();
  const std::int64_t unit = 16 * static_cast<std::int64_t>(n);
  const std::int64_t padded = (total + unit - 1) / unit * unit;
  const std::int64_t slice = padded / n;
  flat_params_ = Array::zeros({padded}, DType::f32, params.begin() == params.end() ? Device{} : params.begin()->second.device());
  flat_grads_ = Array::zeros({padded}, DType::f32, flat_params_.device());
  grad_slice_ = Array::zeros({slice}, DType::f32, flat_params_.device());
  norm_ = Array::zeros({1}, DType::f64, flat_params_.device());
  params = rehome(params, flat_params_, true);
  grads = rehome(params, flat_grads_, false);
  slice_params_.set("flat", flat_params_.slice(slice * rank, slice * (rank + 1)));
  slice_grads_.set("flat", grad_slice_);
  slice_state_ = optimizer_.init(slice_params_);
}

void ShardedOptimizerStep::step(std::optional<double> clip_norm, const AxisNames& axis) {
  reduce_scatter_into(flat_grads_, grad_slice_, ReduceOp::mean, axis);
  if (clip_norm) {
    norm_.data<double>()[0] = optim::sum_of_squares(slice_grads_);
    all_reduce_in_place(norm_, ReduceOp::sum, axis);
    optim::clip_by_global_norm(slice_grads_, *clip_norm, std::sqrt(norm_.data<double>()[0]));
  }
  optimizer_.update(slice_grads_, slice_state_, slice_params_);
  optim::apply_updates(slice_params_, slice_grads_);
  all_gather_into(slice_params_.at("flat"), flat_params_, axis);
}

}  // namespace datarax::train::detail
