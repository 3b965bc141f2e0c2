#include "datarax/distributed/distributed_metrics_module.h"

#include "distributed/per_device.h"

namespace datarax::distributed {

namespace {

Tree reduce_in_spmd(const Tree& metrics, ReduceOp op, const AxisNames& axes) {
  switch (op) {
    case ReduceOp::sum: return psum(metrics, axes);
    case ReduceOp::mean: return pmean(metrics, axes);
    case ReduceOp::max: return pmax(metrics, axes);
    case ReduceOp::min: return pmin(metrics, axes);
  }
  return metrics;
}

std::map<std::string, ReduceOp> same_op(const std::vector<Tree>& per_device, ReduceOp op) {
  return detail::resolve_ops(per_device.empty() ? std::vector<std::string>{} : per_device.front().keys(), {},
                             op, "reduce");
}

// Each stacked leaf [n, ...] as n per-device views.
std::map<std::string, std::vector<Array>> unstack(const Tree& stacked) {
  std::map<std::string, std::vector<Array>> out;
  for (const auto& [key, leaf] : stacked) {
    std::vector<std::int64_t> rest(leaf.shape().dims().begin() + 1, leaf.shape().dims().end());
    for (std::int64_t i = 0; i < leaf.shape()[0]; ++i) out[key].push_back(leaf.slice(i, i + 1).reshape(Shape(rest)));
  }
  return out;
}

}  // namespace

Tree DistributedMetricsModule::reduce_mean(const Tree& metrics, const AxisNames& axis_name) const {
  return detail::as_call("reduce_mean", [&] { return reduce_in_spmd(metrics, ReduceOp::mean, axis_name); });
}
Tree DistributedMetricsModule::reduce_sum(const Tree& metrics, const AxisNames& axis_name) const {
  return detail::as_call("reduce_sum", [&] { return reduce_in_spmd(metrics, ReduceOp::sum, axis_name); });
}
Tree DistributedMetricsModule::reduce_max(const Tree& metrics, const AxisNames& axis_name) const {
  return detail::as_call("reduce_max", [&] { return reduce_in_spmd(metrics, ReduceOp::max, axis_name); });
}
Tree DistributedMetricsModule::reduce_min(const Tree& metrics, const AxisNames& axis_name) const {
  return detail::as_call("reduce_min", [&] { return reduce_in_spmd(metrics, ReduceOp::min, axis_name); });
}

Tree DistributedMetricsModule::reduce_custom(const Tree& metrics, const ReduceSpec& reduce_fn,
                                             const AxisNames& axis_name) const {
  const auto ops = detail::resolve_ops(metrics.keys(), reduce_fn, ReduceOp::mean, "reduce_custom");
  Tree out;
  for (const auto& [key, leaf] : metrics) {
    Tree one{{key, leaf}};
    const ReduceOp op = ops.at(key);  // (a lambda may not capture a structured binding in clang 14)
    out.set(key, detail::as_call("reduce_custom", [&] { return reduce_in_spmd(one, op, axis_name); }).at(key));
  }
  return out;
}

void DistributedMetricsModule::reduce_in_place(Tree& metrics, ReduceOp op, const AxisNames& axis_name) const {
  detail::as_call("reduce_in_place", [&] { all_reduce_in_place(metrics, op, axis_name); });
}

std::map<std::string, std::vector<Array>> DistributedMetricsModule::collect_from_devices(
    const Tree& metrics, const AxisNames& axis_name) const {
  return unstack(datarax::all_gather(metrics, axis_name));
}

Tree DistributedMetricsModule::all_gather(const Tree& metrics, const AxisNames& axis_name) const {
  return datarax::all_gather(metrics, axis_name);
}

Tree DistributedMetricsModule::reduce_mean(const std::vector<Tree>& per_device) const {
  return detail::reduce_per_device(per_device, same_op(per_device, ReduceOp::mean), "reduce_mean");
}
Tree DistributedMetricsModule::reduce_sum(const std::vector<Tree>& per_device) const {
  return detail::reduce_per_device(per_device, same_op(per_device, ReduceOp::sum), "reduce_sum");
}
Tree DistributedMetricsModule::reduce_max(const std::vector<Tree>& per_device) const {
  return detail::reduce_per_device(per_device, same_op(per_device, ReduceOp::max), "reduce_max");
}
Tree DistributedMetricsModule::reduce_min(const std::vector<Tree>& per_device) const {
  return detail::reduce_per_device(per_device, same_op(per_device, ReduceOp::min), "reduce_min");
}
Tree DistributedMetricsModule::reduce_custom(const std::vector<Tree>& per_device, const ReduceSpec& reduce_fn) const {
  detail::check_per_device(per_device, "reduce_custom");
  return detail::reduce_per_device(
      per_device, detail::resolve_ops(per_device.front().keys(), reduce_fn, ReduceOp::mean, "reduce_custom"),
      "reduce_custom");
}
std::map<std::string, std::vector<Array>> DistributedMetricsModule::collect_from_devices(
    const std::vector<Tree>& per_device) const {
  detail::check_per_device(per_device, "collect_from_devices");
  std::map<std::string, std::vector<Array>> out;
  for (const Tree& t : per_device)
    for (const auto& [key, leaf] : t) out[key].push_back(leaf);
  return out;
}
Tree DistributedMetricsModule::all_gather(const std::vector<Tree>& per_device) const {
  return detail::stack_per_device(per_device, "all_gather");
}

Tree DistributedMetricsModule::reduce_mean(const ShardedTree& per_device) const {
  return reduce_mean(detail::per_device_trees(per_device));
}
Tree DistributedMetricsModule::reduce_sum(const ShardedTree& per_device) const {
  return reduce_sum(detail::per_device_trees(per_device));
}
Tree DistributedMetricsModule::reduce_max(const ShardedTree& per_device) const {
  return reduce_max(detail::per_device_trees(per_device));
}
Tree DistributedMetricsModule::reduce_min(const ShardedTree& per_device) const {
  return reduce_min(detail::per_device_trees(per_device));
}
Tree DistributedMetricsModule::reduce_custom(const ShardedTree& per_device, const ReduceSpec& reduce_fn) const {
  return reduce_custom(detail::per_device_trees(per_device), reduce_fn);
}
std::map<std::string, std::vector<Array>> DistributedMetricsModule::collect_from_devices(
    const ShardedTree& per_device) const {
  return collect_from_devices(detail::per_device_trees(per_device));
}
Tree DistributedMetricsModule::all_gather(const ShardedTree& per_device) const {
  return all_gather(detail::per_device_trees(per_device));
}

}  // namespace datarax::distributed
