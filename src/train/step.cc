#include "train/step.h"

#include <algorithm>
#include <cmath>

#include "datarax/collectives.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/optim/clip.h"

namespace datarax::train::detail {

namespace {

std::string buffer_key(std::size_t b) { return "buffer" + std::to_string(b); }

// Views of [begin, end) of every buffer, keyed buffer0, buffer1, ...
Tree ranges(std::vector<Array>& buffers, int rank, int n) {
  Tree out;
  for (std::size_t b = 0; b < buffers.size(); ++b) {
    const std::int64_t slice = buffers[b].numel() / n;
    out.set(buffer_key(b), buffers[b].slice(slice * rank, slice * (rank + 1)));
  }
  return out;
}

}  // namespace

Step::Step(const nn::MlpConfig& model, std::int64_t local_batch, const Tree& params, const StepSettings& settings,
           int rank, int n, const Tree* opt_state)
    : settings_(settings), rank_(rank), n_(n), mlp_(model, std::max<std::int64_t>(local_batch, 1)) {
  const Device device = params.empty() ? Device{} : params.begin()->second.device();
  // Buffers split into n equal slices of whole 64-byte lines (ZeRO-1), or not at all.
  multiple_ = settings_.shard_optimizer_state ? 16 * static_cast<std::int64_t>(n) : 16;
  params_ = FlatTree(params, /*copy_values=*/true, multiple_, device);
  grads_ = FlatTree(params, /*copy_values=*/false, multiple_, device);
  if (settings_.shard_optimizer_state) {
    for (const Array& g : grads_.buffers())
      grad_slices_.push_back(Array::zeros({g.numel() / n}, g.dtype(), device));
    owned_params_ = ranges(params_.buffers(), rank, n);
    for (std::size_t b = 0; b < grad_slices_.size(); ++b) owned_grads_.set(buffer_key(b), grad_slices_[b]);
  } else {
    owned_params_ = ranges(params_.buffers(), 0, 1);
    owned_grads_ = ranges(grads_.buffers(), 0, 1);
    for (Array& g : grads_.buffers()) {
      const std::int64_t per = settings_.bucket_bytes > 0
                                   ? std::max<std::int64_t>(16, settings_.bucket_bytes / static_cast<std::int64_t>(g.itemsize()))
                                   : g.numel();
      for (std::int64_t at = 0; at < g.numel(); at += per) buckets_.push_back(g.slice(at, std::min(g.numel(), at + per)));
    }
  }
  opt_state_ = settings_.optimizer->init(owned_params_);
  if (opt_state != nullptr) load_optimizer_state(*opt_state);
}

void Step::load_optimizer_state(const Tree& whole) {
  opt_state_.at("count").copy_from(whole.at("count"));
  // Each state buffer ("mu/buffer0", ...) gets its owned range of the whole state laid out flat
  // like the parameters.
  for (auto& [key, leaf] : opt_state_) {
    const auto slash = key.rfind('/');
    if (slash == std::string::npos) continue;
    const FlatTree flat(whole.subtree(key.substr(0, slash)), /*copy_values=*/true, multiple_, leaf.device());
    const std::size_t b = static_cast<std::size_t>(std::stoul(key.substr(slash + 1 + 6)));  // "bufferK"
    const std::int64_t owned = leaf.numel();
    const std::int64_t first = settings_.shard_optimizer_state ? owned * rank_ : 0;
    leaf.copy_from(flat.buffers().at(b).slice(first, first + owned));
  }
}

Step::Result Step::run(const Tree& batch, double count) {
  std::int64_t correct = 0;
  // Each device's loss is divided by count / n, so that the mean over devices is the mean over
  // the global batch's real examples (exact also when the last batch is padded).
  const double loss = mlp_.loss_and_grad(params_.tree(), batch.at("inputs"), batch.at("labels"), batch.at("mask"),
                                         count / n_, grads_.tree(), &correct);
  reduce_gradients();
  if (settings_.clip_norm) clip(*settings_.clip_norm);
  update();
  return {loss, static_cast<double>(correct)};
}

void Step::reduce_gradients() {
  if (!settings_.shard_optimizer_state) {
    const distributed::DataParallelModule dp;
    for (Array& bucket : buckets_) dp.all_reduce_gradients_in_place(bucket, ReduceOp::mean, settings_.data_axis);
    return;
  }
  for (std::size_t b = 0; b < grad_slices_.size(); ++b)
    reduce_scatter_into(grads_.buffers()[b], grad_slices_[b], ReduceOp::mean, settings_.data_axis);
}

void Step::clip(double max_norm) {
  double sum = optim::sum_of_squares(owned_grads_);
  if (settings_.shard_optimizer_state) {  // the slices' squares, summed over the data axis
    norm_.data<double>()[0] = sum;
    all_reduce_in_place(norm_, ReduceOp::sum, settings_.data_axis);
    sum = norm_.data<double>()[0];
  }
  optim::clip_by_global_norm(owned_grads_, max_norm, std::sqrt(sum));
}

void Step::update() {
  settings_.optimizer->update(owned_grads_, opt_state_, owned_params_);
  optim::apply_updates(owned_params_, owned_grads_);
  if (settings_.shard_optimizer_state)
    for (std::size_t b = 0; b < params_.buffers().size(); ++b)
      all_gather_into(owned_params_.at(buffer_key(b)), params_.buffers()[b], settings_.data_axis);
}

Tree Step::whole_optimizer_state() {
  Tree out;
  out.set("count", opt_state_.at("count").copy());
  // Every state buffer ("mu/buffer0", ...): whole (gathered from the slices under ZeRO-1), then
  // cut into the parameters' leaves.
  std::vector<std::string> prefixes;
  for (const auto& [key, leaf] : opt_state_)
    if (const auto slash = key.rfind('/'); slash != std::string::npos &&
        std::find(prefixes.begin(), prefixes.end(), key.substr(0, slash)) == prefixes.end())
      prefixes.push_back(key.substr(0, slash));
  for (const std::string& prefix : prefixes) {
    std::vector<Array> whole;
    for (std::size_t b = 0; b < params_.buffers().size(); ++b) {
      const Array& mine = opt_state_.at(prefix + "/" + buffer_key(b));
      if (!settings_.shard_optimizer_state) {
        whole.push_back(mine.copy());
        continue;
      }
      whole.push_back(Array::empty({mine.numel() * n_}, mine.dtype(), mine.device()));
      all_gather_into(mine, whole.back(), settings_.data_axis);
    }
    for (const auto& [key, leaf] : params_.views_of(whole)) out.set(prefix + "/" + key, leaf);
  }
  return out;
}

}  // namespace datarax::train::detail
