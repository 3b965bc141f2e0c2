#include "train/param_units.h"

#include <algorithm>
#include <cstdio>

#include "datarax/collectives.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/error.h"

namespace datarax::train::detail {

namespace {

std::string unit_key(std::size_t u) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "unit%03zu", u);  // zero-padded: a Tree keeps keys sorted
  return buf;
}

std::string leaf_key(int l, const char* what) { return "dense_" + std::to_string(l) + "/" + what; }

// Whether tensor parallelism splits this leaf of a layer over the model axis.
bool model_split(nn::LayerSplit split, bool kernel) {
  return split == nn::LayerSplit::column || (split == nn::LayerSplit::row && kernel);
}

}  // namespace

ParamUnits::ParamUnits(const Tree& local, const std::vector<nn::LayerSplit>& splits, const UnitsSettings& settings,
                       int rank, int n)
    : settings_(settings),
      rank_(rank),
      n_(n),
      layers_(static_cast<int>(splits.size())),
      layer_units_(splits.size()),
      layer_leaves_(splits.size()) {
  if (settings_.zero_stage < 0 || settings_.zero_stage > 3)
    throw InvalidArgumentError("ParamUnits: zero_stage " + std::to_string(settings_.zero_stage) + "; valid: 0..3");
  // A data axis of one device has nothing to shard or reduce: every stage is then stage 0, with
  // no collective at all.
  if (n_ == 1) settings_.zero_stage = 0;
  const int stage = settings_.zero_stage;
  // Group the leaves: by kind, and from stage 2 on by layer too.
  for (int l = 0; l < layers_; ++l)
    for (const char* what : {"kernel", "bias"}) {
      const std::string key = leaf_key(l, what);
      const Array& leaf = local.at(key);
      const bool split = model_split(splits[static_cast<std::size_t>(l)], what[0] == 'k');
      const int layer = stage >= 2 ? l : -1;
      auto it = std::find_if(units_.begin(), units_.end(),
                             [&](const Unit& u) { return u.layer == layer && u.model_split == split; });
      if (it == units_.end()) {
        Unit unit;
        unit.layer = layer;
        unit.model_split = split;
        it = units_.insert(units_.end(), std::move(unit));
      }
      const auto u = static_cast<std::size_t>(it - units_.begin());
      (what[0] == 'k' ? layer_leaves_[static_cast<std::size_t>(l)].first : layer_leaves_[static_cast<std::size_t>(l)].second) =
          Place{u, it->keys.size()};
      it->keys.push_back(key);
      it->shapes.push_back(leaf.shape());
      it->offsets.push_back(it->size);
      it->size += leaf.numel();
      auto& mine = layer_units_[static_cast<std::size_t>(l)];
      if (std::find(mine.begin(), mine.end(), u) == mine.end()) mine.push_back(u);
    }
  // Pad every unit to 16 floats (a cache line) per slice, allocate, and fill in the parameters.
  const std::int64_t multiple = 16 * (stage >= 1 ? static_cast<std::int64_t>(n_) : 1);
  const Device device = local.empty() ? Device{} : local.begin()->second.device();
  std::vector<std::int64_t> layer_size(static_cast<std::size_t>(layers_), 0);
  for (std::size_t u = 0; u < units_.size(); ++u) {
    Unit& unit = units_[u];
    unit.size = (unit.size + multiple - 1) / multiple * multiple;
    Array whole = Array::zeros({unit.size}, DType::f32, device);
    for (std::size_t i = 0; i < unit.keys.size(); ++i) view(whole, unit, i).copy_from(local.at(unit.keys[i]));
    if (stage <= 2) unit.full = whole;
    unit.shard = stage == 3 ? slice_of(whole).copy() : stage >= 1 ? slice_of(unit.full) : Array();
    if (stage <= 1) unit.grad_full = Array::zeros({unit.size}, DType::f32, device);
    if (stage >= 1) unit.grad_shard = Array::zeros({unit.size / n_}, DType::f32, device);
    if (stage == 0) {
      const std::int64_t per = settings_.bucket_bytes > 0 ? std::max<std::int64_t>(16, settings_.bucket_bytes / 4) : unit.size;
      for (std::int64_t at = 0; at < unit.size; at += per)
        unit.buckets.push_back(unit.grad_full.slice(at, std::min(unit.size, at + per)));
    }
    owned_params_.set(unit_key(u), stage >= 1 ? unit.shard : unit.full);
    owned_grads_.set(unit_key(u), stage >= 1 ? unit.grad_shard : unit.grad_full);
    if (unit.layer >= 0) {
      unit.scratch_at = layer_size[static_cast<std::size_t>(unit.layer)];
      layer_size[static_cast<std::size_t>(unit.layer)] += unit.size;
    }
  }
  // One layer's units in flight: gathered parameters (stage 3), whole gradients (stages 2 and 3).
  const std::int64_t in_flight = layers_ > 0 ? *std::max_element(layer_size.begin(), layer_size.end()) : 0;
  if (stage == 3) param_scratch_ = Array::zeros({in_flight}, DType::f32, device);
  if (stage >= 2) grad_scratch_ = Array::zeros({in_flight}, DType::f32, device);
  for (Unit& unit : units_) {
    unit.params_in_use = stage == 3 ? param_scratch_.slice(unit.scratch_at, unit.scratch_at + unit.size) : unit.full;
    unit.grads_in_use = stage >= 2 ? grad_scratch_.slice(unit.scratch_at, unit.scratch_at + unit.size) : unit.grad_full;
  }
  for (const auto& [kernel, bias] : layer_leaves_) {
    weights_.push_back({view(units_[kernel.unit].params_in_use, units_[kernel.unit], kernel.leaf).data<float>(),
                        view(units_[bias.unit].params_in_use, units_[bias.unit], bias.leaf).data<float>()});
    grads_.push_back({view(units_[kernel.unit].grads_in_use, units_[kernel.unit], kernel.leaf).data<float>(),
                      view(units_[bias.unit].grads_in_use, units_[bias.unit], bias.leaf).data<float>()});
  }
}

Array ParamUnits::slice_of(const Array& whole) const {
  const std::int64_t per = whole.numel() / n_;
  return whole.slice(per * rank_, per * (rank_ + 1));
}

Array ParamUnits::view(const Array& buffer, const Unit& u, std::size_t leaf) const {
  return buffer.slice(u.offsets[leaf], u.offsets[leaf] + u.shapes[leaf].numel()).reshape(u.shapes[leaf]);
}

// ---- nn::LayerParams ----------------------------------------------------------------------------

ParamUnits::Weights ParamUnits::acquire(int l, bool backward) {
  // Stage 3: the layer's units gathered just before use, into the buffer every layer reuses. In
  // forward always (the parameters may have changed since the last step); in backward unless the
  // buffer still holds the layer — the last layer, whose backward follows its forward at once.
  if (settings_.zero_stage == 3 && !(backward && gathered_ == l)) {
    for (std::size_t u : layer_units_[static_cast<std::size_t>(l)])
      all_gather_into(units_[u].shard, units_[u].params_in_use, settings_.data_axis);
    gathered_ = l;
  }
  return weights_[static_cast<std::size_t>(l)];
}

ParamUnits::Gradients ParamUnits::gradients(int l) { return grads_[static_cast<std::size_t>(l)]; }

void ParamUnits::gradients_done(int l) {
  if (settings_.zero_stage < 2) return;
  for (std::size_t u : layer_units_[static_cast<std::size_t>(l)]) {
    Unit& unit = units_[u];
    // The padding after the last leaf: zero, as the reduced slices' padding must stay.
    const std::span<float> whole = unit.grads_in_use.data<float>();
    std::fill(whole.begin() + unit.offsets.back() + unit.shapes.back().numel(), whole.end(), 0.0f);
    reduce_scatter_into(unit.grads_in_use, unit.grad_shard, ReduceOp::mean, settings_.data_axis);
  }
}

// ---- around the optimizer -----------------------------------------------------------------------

void ParamUnits::reduce_gradients() {
  if (settings_.zero_stage == 0) {
    if (n_ == 1) return;
    const distributed::DataParallelModule dp;
    for (Unit& unit : units_)
      for (Array& bucket : unit.buckets) dp.all_reduce_gradients_in_place(bucket, ReduceOp::mean, settings_.data_axis);
  } else if (settings_.zero_stage == 1) {
    for (Unit& unit : units_) reduce_scatter_into(unit.grad_full, unit.grad_shard, ReduceOp::mean, settings_.data_axis);
  }
}

std::pair<double, double> ParamUnits::owned_squares() const {
  std::pair<double, double> sums{0, 0};
  for (std::size_t u = 0; u < units_.size(); ++u) {
    double s = 0;
    for (float v : owned_grads_.at(unit_key(u)).data<float>()) s += static_cast<double>(v) * static_cast<double>(v);
    (units_[u].model_split ? sums.first : sums.second) += s;
  }
  return sums;
}

void ParamUnits::gather_updated() {
  if (settings_.zero_stage != 1 && settings_.zero_stage != 2) return;
  for (Unit& unit : units_) all_gather_into(unit.shard, unit.full, settings_.data_axis);  // in place
}

// ---- whole blocks, for snapshots and resume ----------------------------------------------------

Tree ParamUnits::local_params() {
  Tree out;
  for (const Unit& unit : units_) {
    Array whole = unit.full;
    if (settings_.zero_stage == 3) {
      whole = Array::empty({unit.size}, DType::f32, unit.shard.device());
      all_gather_into(unit.shard, whole, settings_.data_axis);
    }
    for (std::size_t i = 0; i < unit.keys.size(); ++i) out.set(unit.keys[i], view(whole, unit, i).copy());
  }
  return out;
}

Tree ParamUnits::local_view_of(const Tree& owned) {
  Tree out;
  for (std::size_t u = 0; u < units_.size(); ++u) {
    const Unit& unit = units_[u];
    const Array& mine = owned.at(unit_key(u));
    Array whole = mine;
    if (settings_.zero_stage >= 1) {
      whole = Array::empty({unit.size}, mine.dtype(), mine.device());
      all_gather_into(mine, whole, settings_.data_axis);
    }
    for (std::size_t i = 0; i < unit.keys.size(); ++i) out.set(unit.keys[i], view(whole, unit, i).copy());
  }
  return out;
}

void ParamUnits::owned_from_local(const Tree& local, Tree& owned) const {
  for (std::size_t u = 0; u < units_.size(); ++u) {
    const Unit& unit = units_[u];
    Array whole = Array::zeros({unit.size}, DType::f32, owned.at(unit_key(u)).device());
    for (std::size_t i = 0; i < unit.keys.size(); ++i) view(whole, unit, i).copy_from(local.at(unit.keys[i]));
    owned.at(unit_key(u)).copy_from(settings_.zero_stage >= 1 ? slice_of(whole) : whole);
  }
}

DeviceBytes ParamUnits::held_bytes() const {
  DeviceBytes b;
  for (const Unit& unit : units_) {
    b.params += static_cast<std::int64_t>(settings_.zero_stage == 3 ? unit.shard.nbytes() : unit.full.nbytes());
    b.grads += static_cast<std::int64_t>(unit.grad_full.nbytes() + unit.grad_shard.nbytes());
  }
  b.in_flight = static_cast<std::int64_t>(param_scratch_.nbytes() + grad_scratch_.nbytes());
  return b;
}

}  // namespace datarax::train::detail
