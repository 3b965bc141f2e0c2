#include "datarax/distributed/data_parallel_module.h"

#include "core/strings.h"
#include "datarax/error.h"
#include "datarax/spmd.h"
#include "datarax/tree_spec.h"
#include "distributed/per_device.h"

namespace datarax::distributed {

NamedSharding DataParallelModule::create_data_parallel_sharding(const Mesh& mesh,
                                                                const std::string& data_axis) const {
  if (!mesh.has_axis(data_axis))
    throw InvalidArgumentError("create_data_parallel_sharding: the mesh has no axis " +
                               detail::quoted(data_axis) + "; its axes are (" +
                               detail::join(mesh.axis_names(), ", ") + ")");
  return NamedSharding(mesh, PartitionSpec{data_axis});
}

ShardedTree DataParallelModule::shard_batch(const Tree& batch, const NamedSharding& sharding) const {
  Tree split, scalars;
  for (const auto& [key, leaf] : batch) (leaf.rank() == 0 ? scalars : split).set(key, leaf);
  ShardedTree out = ShardedTree::from_process_local(split, sharding,
                                                    {.placement = Placement::view_if_possible, .op = "shard_batch"});
  const NamedSharding replicated(sharding.mesh(), PartitionSpec{});
  for (const auto& [key, leaf] : scalars)
    out.set(key, ShardedArray::shard(leaf, replicated, {.placement = Placement::copy, .op = "shard_batch", .key = key}));
  return out;
}

ShardedArray DataParallelModule::shard_batch(const Array& batch,
                                             const NamedSharding& sharding) const {
  return ShardedArray::from_process_local(batch, sharding,
                             {.placement = Placement::view_if_possible, .op = "shard_batch"});
}

ShardedTree DataParallelModule::shard_model_state(
    const Tree& state, const Mesh& mesh, const std::map<std::string, PartitionSpec>& specs) const {
  const TreeSpec tree_spec(specs);
  tree_spec.check_keys(state, "shard_model_state", "state");
  ShardedTree out;
  for (const auto& [key, leaf] : state)
    out.set(key, ShardedArray::shard(leaf, NamedSharding(mesh, tree_spec.for_key(key)),
                                     {.placement = Placement::copy, .op = "shard_model_state", .key = key}));
  return out;
}

ShardedTree DataParallelModule::shard_model_state(const Tree& state, const Mesh& mesh, const ShardingRules& rules) const {
  ShardedTree out;
  for (const auto& [key, leaf] : state)
    out.set(key, ShardedArray::shard(leaf, rules.sharding_for(key, leaf.shape(), mesh),
                                     {.placement = Placement::copy, .op = "shard_model_state", .key = key}));
  return out;
}

namespace {

// The ops all_reduce_gradients takes: the seed's reduce_type "mean" or "sum".
ReduceOp gradient_op(std::string_view reduce_type) {
  return parse_reduce_op(reduce_type, "all_reduce_gradients", {ReduceOp::mean, ReduceOp::sum});
}

// The enclosing SPMD function's axis when it has exactly one (pmap's), else "data". The name's
// storage is the current mesh's, which outlives the call.
AxisNames default_axis() {
  if (in_spmd() && current_mesh().axis_names().size() == 1) return AxisNames(current_mesh().axis_names().front());
  return AxisNames("data");
}

}  // namespace

Tree DataParallelModule::all_reduce_gradients(const Tree& grads, std::string_view reduce_type) const {
  return all_reduce_gradients(grads, gradient_op(reduce_type), default_axis());
}
Tree DataParallelModule::all_reduce_gradients(const Tree& grads, std::string_view reduce_type,
                                              const AxisNames& axis_name) const {
  return all_reduce_gradients(grads, gradient_op(reduce_type), axis_name);
}
Tree DataParallelModule::all_reduce_gradients(const Tree& grads, ReduceOp reduce_type) const {
  return all_reduce_gradients(grads, reduce_type, default_axis());
}
Tree DataParallelModule::all_reduce_gradients(const Tree& grads, ReduceOp reduce_type,
                                              const AxisNames& axis_name) const {
  gradient_op(to_string(reduce_type));  // mean or sum only
  return detail::as_call("all_reduce_gradients",
                         [&] { return reduce_type == ReduceOp::mean ? pmean(grads, axis_name) : psum(grads, axis_name); });
}

void DataParallelModule::all_reduce_gradients_in_place(Tree& grads, std::string_view reduce_type) const {
  all_reduce_gradients_in_place(grads, reduce_type, default_axis());
}
void DataParallelModule::all_reduce_gradients_in_place(Tree& grads, std::string_view reduce_type,
                                                       const AxisNames& axis_name) const {
  const ReduceOp op = gradient_op(reduce_type);
  detail::as_call("all_reduce_gradients_in_place", [&] { all_reduce_in_place(grads, op, axis_name); });
}

void DataParallelModule::all_reduce_gradients_in_place(Array& flat_grads, ReduceOp reduce_type) const {
  all_reduce_gradients_in_place(flat_grads, reduce_type, default_axis());
}
void DataParallelModule::all_reduce_gradients_in_place(Array& flat_grads, ReduceOp reduce_type,
                                                       const AxisNames& axis_name) const {
  const ReduceOp op = gradient_op(to_string(reduce_type));
  detail::as_call("all_reduce_gradients_in_place", [&] { all_reduce_in_place(flat_grads, op, axis_name); });
}

ShardedTree DataParallelModule::all_reduce_gradients(const ShardedTree& per_device_grads,
                                                     std::string_view reduce_type) const {
  const ReduceOp op = gradient_op(reduce_type);
  if (per_device_grads.empty()) return {};
  const Mesh& mesh = per_device_grads.begin()->second.sharding().mesh();
  const std::vector<Tree> per_device = detail::per_device_trees(per_device_grads);
  std::map<std::string, ReduceOp> ops;
  for (const auto& key : per_device_grads.keys()) ops[key] = op;
  const Tree reduced = detail::reduce_per_device(per_device, ops, "all_reduce_gradients");
  return ShardedTree::shard(reduced, NamedSharding(mesh, PartitionSpec{}),
                            {.placement = Placement::copy, .op = "all_reduce_gradients"});
}

}  // namespace datarax::distributed
