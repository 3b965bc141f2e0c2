#include "train/step.h"

#include <algorithm>
#include <cmath>

#include "datarax/collectives.h"
#include "datarax/optim/clip.h"

namespace datarax::train::detail {

Step::Step(const nn::ParallelMlpConfig& model, std::int64_t local_batch, const Tree& params, const StepSettings& settings,
           int rank, int n, const Tree* opt_state)
    : settings_(settings),
      n_(n),
      mlp_(model, std::max<std::int64_t>(local_batch, 1)),
      units_(params, model.splits, settings.units, rank, n),
      // The clip norm's sums: one of everything, or (with a model axis) the split blocks' apart.
      norm_(Array::zeros({settings.model_size > 1 ? 2 : 1}, DType::f64)) {
  if (settings_.time_phases) {
    timer_ = &timer_storage_;
    mlp_.set_phase_timer(timer_);
  }
  opt_state_ = settings_.optimizer->init(units_.owned_params());
  if (opt_state != nullptr) load_optimizer_state(*opt_state);
}

Step::Result Step::run(const Tree& batch, double count) {
  std::int64_t correct = 0;
  // Each device's loss is divided by count / n, so that the mean over the data axis is the mean
  // over the global batch's real examples (exact also when the last batch is padded).
  const double loss = mlp_.loss_and_grad(units_, batch.at("inputs"), batch.at("labels"), batch.at("mask"),
                                         count / n_, &correct);
  mark(timer_, Phase::collectives);
  units_.reduce_gradients();
  mark(timer_, Phase::optimizer);
  if (settings_.clip_norm) clip(*settings_.clip_norm);
  settings_.optimizer->update_and_apply(units_.owned_grads(), opt_state_, units_.owned_params());
  mark(timer_, Phase::collectives);
  units_.gather_updated();
  return {loss, static_cast<double>(correct)};
}

void Step::clip(double max_norm) {
  // Σ x² over the whole model: the slices' sums add over "data"; a block tensor parallelism splits
  // adds over "model", a block every model device holds whole counts once.
  const auto [split, whole] = units_.owned_squares();
  const std::span<double> sums = norm_.data<double>();
  double total = split + whole;
  if (settings_.model_size > 1) {
    sums[0] = split;
    sums[1] = whole;
    all_reduce_in_place(norm_, ReduceOp::sum, units_.zero_stage() >= 1
                                                  ? AxisNames{settings_.units.data_axis, settings_.units.model_axis}
                                                  : AxisNames{settings_.units.model_axis});
    total = sums[0] + sums[1] / settings_.model_size;  // the whole blocks came once from each model device
  } else if (units_.zero_stage() >= 1) {
    sums[0] = total;
    all_reduce_in_place(norm_, ReduceOp::sum, settings_.units.data_axis);
    total = sums[0];
  }
  optim::clip_by_global_norm(units_.owned_grads(), max_norm, std::sqrt(total));
}

Tree Step::local_optimizer_state() {
  Tree out;
  out.set("count", opt_state_.at("count").copy());
  // Every state buffer ("mu/unit000", ...): its owned leaves laid out as the parameters' blocks.
  std::vector<std::string> prefixes;
  for (const auto& [key, leaf] : opt_state_)
    if (const auto slash = key.find('/'); slash != std::string::npos &&
        std::find(prefixes.begin(), prefixes.end(), key.substr(0, slash)) == prefixes.end())
      prefixes.push_back(key.substr(0, slash));
  for (const std::string& prefix : prefixes)
    for (const auto& [key, leaf] : units_.local_view_of(opt_state_.subtree(prefix))) out.set(prefix + "/" + key, leaf);
  return out;
}

void Step::load_optimizer_state(const Tree& local) {
  opt_state_.at("count").copy_from(local.at("count"));
  std::vector<std::string> prefixes;
  for (const auto& [key, leaf] : opt_state_)
    if (const auto slash = key.find('/'); slash != std::string::npos &&
        std::find(prefixes.begin(), prefixes.end(), key.substr(0, slash)) == prefixes.end())
      prefixes.push_back(key.substr(0, slash));
  for (const std::string& prefix : prefixes) {
    Tree owned;
    for (const auto& [key, leaf] : opt_state_)
      if (key.rfind(prefix + "/", 0) == 0) owned.set(key.substr(prefix.size() + 1), leaf);  // views: written in place
    units_.owned_from_local(local.subtree(prefix), owned);
  }
}

DeviceBytes Step::held_bytes() const {
  DeviceBytes b = units_.held_bytes();
  for (const auto& [key, leaf] : opt_state_) b.optimizer += static_cast<std::int64_t>(leaf.nbytes());
  return b;
}

}  // namespace datarax::train::detail
