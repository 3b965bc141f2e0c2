#include "train/param_units.h"

#include <algorithm>
#include <cstdio>

#include "datarax/collectives.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/error.h"

namespace datarax::train::detail {

namespace {

std::string unit_key(std::size_t u) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "unit%03zu", u);  // zero-padded: a Tree keeps keys sorted
  return buf;
}

// Greedy colouring: the first slot none of whose intervals overlaps any of `mine`.
int colour(std::vector<std::vector<std::array<int, 2>>>& slots, const std::vector<std::array<int, 2>>& mine) {
  auto overlaps = [](const std::array<int, 2>& a, const std::array<int, 2>& b) { return a[0] <= b[1] && b[0] <= a[1]; };
  for (std::size_t s = 0; s < slots.size(); ++s) {
    bool free = true;
    for (const auto& taken : slots[s])
      for (const auto& m : mine) free = free && !overlaps(taken, m);
    if (free) {
      slots[s].insert(slots[s].end(), mine.begin(), mine.end());
      return static_cast<int>(s);
    }
  }
  slots.push_back(mine);
  return static_cast<int>(slots.size()) - 1;
}

}  // namespace

ParamUnits::ParamUnits(const Tree& local, const std::vector<bool>& split, const std::vector<int>& group, int groups,
                       const UnitsSettings& settings, int rank, int n)
    : settings_(settings), rank_(rank), n_(n), group_units_(static_cast<std::size_t>(groups)),
      group_size_(static_cast<std::size_t>(groups), 0) {
  if (settings_.zero_stage < 0 || settings_.zero_stage > 3)
    throw InvalidArgumentError("ParamUnits: zero_stage " + std::to_string(settings_.zero_stage) + "; valid: 0..3");
  // A data axis of one device has nothing to shard or reduce: every stage is then stage 0, with
  // no collective at all.
  if (n_ == 1) settings_.zero_stage = 0;
  const int stage = settings_.zero_stage;
  // Group the leaves: by kind, and from stage 2 on by group too.
  std::size_t i = 0;
  for (const auto& [key, leaf] : local) {
    if (leaf.dtype() != DType::f32)
      throw InvalidArgumentError("train: parameter \"" + key + "\" is " + std::string(to_string(leaf.dtype())) +
                                 "; the trainer keeps f32 parameters");
    const bool s = split[i];
    const int g = stage >= 2 ? group[i] : -1;
    auto it = std::find_if(units_.begin(), units_.end(), [&](const Unit& u) { return u.group == g && u.model_split == s; });
    if (it == units_.end()) {
      Unit unit;
      unit.group = g;
      unit.model_split = s;
      it = units_.insert(units_.end(), std::move(unit));
    }
    const auto u = static_cast<std::size_t>(it - units_.begin());
    places_.push_back(Place{u, it->keys.size()});
    keys_.push_back(key);
    it->keys.push_back(key);
    it->index.push_back(i);
    it->shapes.push_back(leaf.shape());
    it->offsets.push_back(it->size);
    it->size += leaf.numel();
    if (g >= 0) {
      auto& mine = group_units_[static_cast<std::size_t>(g)];
      if (std::find(mine.begin(), mine.end(), u) == mine.end()) mine.push_back(u);
    }
    ++i;
  }
  // Pad every unit to 16 floats (a cache line) per slice, allocate, and fill in the parameters.
  const std::int64_t multiple = 16 * (stage >= 1 ? static_cast<std::int64_t>(n_) : 1);
  const Device device = local.empty() ? Device{} : local.begin()->second.device();
  for (std::size_t u = 0; u < units_.size(); ++u) {
    Unit& unit = units_[u];
    unit.size = (unit.size + multiple - 1) / multiple * multiple;
    Array whole = Array::zeros({unit.size}, DType::f32, device);
    for (std::size_t k = 0; k < unit.keys.size(); ++k) view(whole, unit, k).copy_from(local.at(unit.keys[k]));
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
    if (unit.group >= 0) {
      unit.slot_at = group_size_[static_cast<std::size_t>(unit.group)];
      group_size_[static_cast<std::size_t>(unit.group)] += unit.size;
    }
    unit.params_in_use = unit.full;
    unit.grads_in_use = unit.grad_full;
  }
}

void ParamUnits::plan_slots(const std::vector<GroupUse>& uses, int nodes, int eval_nodes) {
  const int stage = settings_.zero_stage;
  const std::size_t groups = group_units_.size();
  param_slot_.assign(groups, -1);
  grad_slot_.assign(groups, -1);
  if (stage < 2) return;
  // Intervals on one timeline: forward node i at i, backward node i at 2·nodes − i, evaluation
  // node i at 2·nodes + 1 + i.
  const int eval_at = 2 * nodes + 1;
  auto start = [&](const GroupUse& u) { return u.first >= 0 ? u.first : u.eval_first >= 0 ? eval_at + u.eval_first : eval_at + eval_nodes; };
  std::vector<std::size_t> order(groups);
  for (std::size_t g = 0; g < groups; ++g) order[g] = g;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return start(uses[a]) < start(uses[b]); });
  std::vector<std::vector<std::array<int, 2>>> pslots, gslots;
  for (std::size_t g : order) {
    const GroupUse& use = uses[g];
    if ((use.first < 0 && use.eval_first < 0) || group_units_[g].empty()) continue;
    if (stage == 3) {
      std::vector<std::array<int, 2>> held;
      if (use.first >= 0) held.push_back({use.first, use.last});
      if (use.backward_first >= 0) held.push_back({2 * nodes - use.backward_last, 2 * nodes - use.backward_first});
      if (use.eval_first >= 0) held.push_back({eval_at + use.eval_first, eval_at + use.eval_last});
      param_slot_[g] = colour(pslots, held);
    }
    if (use.first >= 0) grad_slot_[g] = colour(gslots, {{2 * nodes - use.last, 2 * nodes - use.first}});
  }
  const Device device = units_.empty() ? Device{} : units_.front().grad_shard.device();
  std::vector<std::int64_t> psize(pslots.size(), 0), gsize(gslots.size(), 0);
  for (std::size_t g = 0; g < groups; ++g) {
    if (param_slot_[g] >= 0) psize[static_cast<std::size_t>(param_slot_[g])] = std::max(psize[static_cast<std::size_t>(param_slot_[g])], group_size_[g]);
    if (grad_slot_[g] >= 0) gsize[static_cast<std::size_t>(grad_slot_[g])] = std::max(gsize[static_cast<std::size_t>(grad_slot_[g])], group_size_[g]);
  }
  for (std::int64_t s : psize) param_slots_.push_back(Array::zeros({s}, DType::f32, device));
  for (std::int64_t s : gsize) grad_slots_.push_back(Array::zeros({s}, DType::f32, device));
  param_slot_holder_.assign(param_slots_.size(), -1);
  for (std::size_t g = 0; g < groups; ++g)
    for (std::size_t u : group_units_[g]) {
      Unit& unit = units_[u];
      if (grad_slot_[g] >= 0)
        unit.grads_in_use = grad_slots_[static_cast<std::size_t>(grad_slot_[g])].slice(unit.slot_at, unit.slot_at + unit.size);
      else  // unused by the training loss: its gradient is zero; a buffer of its own, zeroed once
        unit.grads_in_use = Array::zeros({unit.size}, DType::f32, device);
      if (stage == 3) {
        if (param_slot_[g] >= 0)
          unit.params_in_use = param_slots_[static_cast<std::size_t>(param_slot_[g])].slice(unit.slot_at, unit.slot_at + unit.size);
        else {  // unused: its values, gathered once, are never read by a loss
          unit.params_in_use = Array::zeros({unit.size}, DType::f32, device);
          all_gather_into(unit.shard, unit.params_in_use, settings_.data_axis);
        }
      }
    }
}

const ParamUnits::Place& ParamUnits::place(const std::string& key) const {
  const auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end()) throw InvalidArgumentError("ParamUnits: no parameter \"" + key + "\"");
  return places_[static_cast<std::size_t>(it - keys_.begin())];
}

Array ParamUnits::param_view(const std::string& key) const {
  const Place& p = place(key);
  return view(units_[p.unit].params_in_use, units_[p.unit], p.leaf);
}

Array ParamUnits::grad_view(const std::string& key) const {
  const Place& p = place(key);
  return view(units_[p.unit].grads_in_use, units_[p.unit], p.leaf);
}

Array ParamUnits::slice_of(const Array& whole) const {
  const std::int64_t per = whole.numel() / n_;
  return whole.slice(per * rank_, per * (rank_ + 1));
}

Array ParamUnits::view(const Array& buffer, const Unit& u, std::size_t leaf) {
  return buffer.slice(u.offsets[leaf], u.offsets[leaf] + u.shapes[leaf].numel()).reshape(u.shapes[leaf]);
}

// ---- around the computation ---------------------------------------------------------------------

void ParamUnits::gather_group(int g, bool backward) {
  if (settings_.zero_stage != 3) return;
  const int slot = param_slot_[static_cast<std::size_t>(g)];
  if (slot < 0 || (backward && param_slot_holder_[static_cast<std::size_t>(slot)] == g)) return;
  for (std::size_t u : group_units_[static_cast<std::size_t>(g)])
    all_gather_into(units_[u].shard, units_[u].params_in_use, settings_.data_axis);
  param_slot_holder_[static_cast<std::size_t>(slot)] = g;
}

void ParamUnits::group_gradients_done(int g, const std::vector<bool>& unused) {
  if (settings_.zero_stage < 2) return;
  for (std::size_t u : group_units_[static_cast<std::size_t>(g)]) {
    Unit& unit = units_[u];
    const std::span<float> whole = unit.grads_in_use.data<float>();
    // What no op wrote holds another group's values (the slot is shared): zeros, as the padding.
    for (std::size_t k = 0; k < unit.keys.size(); ++k)
      if (unused[unit.index[k]])
        std::fill_n(whole.begin() + unit.offsets[k], unit.shapes[k].numel(), 0.0f);
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
    for (std::size_t k = 0; k < unit.keys.size(); ++k) out.set(unit.keys[k], view(whole, unit, k).copy());
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
    for (std::size_t k = 0; k < unit.keys.size(); ++k) out.set(unit.keys[k], view(whole, unit, k).copy());
  }
  return out;
}

void ParamUnits::owned_from_local(const Tree& local, Tree& owned) const {
  for (std::size_t u = 0; u < units_.size(); ++u) {
    const Unit& unit = units_[u];
    Array whole = Array::zeros({unit.size}, DType::f32, owned.at(unit_key(u)).device());
    for (std::size_t k = 0; k < unit.keys.size(); ++k) view(whole, unit, k).copy_from(local.at(unit.keys[k]));
    owned.at(unit_key(u)).copy_from(settings_.zero_stage >= 1 ? slice_of(whole) : whole);
  }
}

DeviceBytes ParamUnits::held_bytes() const {
  DeviceBytes b;
  for (const Unit& unit : units_) {
    b.params += static_cast<std::int64_t>(settings_.zero_stage == 3 ? unit.shard.nbytes() : unit.full.nbytes());
    b.grads += static_cast<std::int64_t>(unit.grad_full.nbytes() + unit.grad_shard.nbytes());
  }
  for (const Array& s : param_slots_) b.in_flight += static_cast<std::int64_t>(s.nbytes());
  for (const Array& s : grad_slots_) b.in_flight += static_cast<std::int64_t>(s.nbytes());
  return b;
}

}  // namespace datarax::train::detail
