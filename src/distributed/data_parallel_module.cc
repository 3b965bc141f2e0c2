#include "datarax/distributed/data_parallel_module.h"

#include "core/strings.h"
#include "datarax/error.h"

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
  return ShardedTree::shard(batch, sharding,
                            {.placement = Placement::view_if_possible, .op = "shard_batch"});
}

ShardedArray DataParallelModule::shard_batch(const Array& batch,
                                             const NamedSharding& sharding) const {
  return ShardedArray::shard(batch, sharding,
                             {.placement = Placement::view_if_possible, .op = "shard_batch"});
}

ShardedTree DataParallelModule::shard_model_state(
    const Tree& state, const Mesh& mesh, const std::map<std::string, PartitionSpec>& specs) const {
  for (const auto& [key, spec] : specs)
    if (!state.contains(key))
      throw KeyError("shard_model_state: a PartitionSpec is given for " + detail::quoted(key) +
                     ", which is not a key of the state; its keys are " +
                     (state.empty() ? std::string("(none)") : detail::join(state.keys(), ", ")));
  ShardedTree out;
  for (const auto& [key, leaf] : state) {
    auto it = specs.find(key);
    const NamedSharding sharding(mesh, it == specs.end() ? PartitionSpec{} : it->second);
    out.set(key, ShardedArray::shard(leaf, sharding,
                                     {.placement = Placement::copy, .op = "shard_model_state", .key = key}));
  }
  return out;
}

}  // namespace datarax::distributed
