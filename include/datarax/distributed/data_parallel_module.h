// DataParallelModule: places batches and model state on a mesh for data-parallel training (the
// seed's module of that name).
//
//   DataParallelModule dp_module;
//   NamedSharding sharding = dp_module.create_data_parallel_sharding(mesh);
//   ShardedTree sharded_batch = dp_module.shard_batch(batch, sharding);  // views, no copy
//   ShardedTree sharded_state = dp_module.shard_model_state(state, mesh);  // replicated copies
#pragma once

#include <map>
#include <string>

#include "datarax/collectives.h"
#include "datarax/mesh.h"
#include "datarax/reduce_op.h"
#include "datarax/named_sharding.h"
#include "datarax/partition_spec.h"
#include "datarax/sharded_tree.h"
#include "datarax/sharding_rules.h"
#include "datarax/tree.h"

namespace datarax::distributed {

class DataParallelModule {
 public:
  // NamedSharding(mesh, PartitionSpec{data_axis}): the leading (batch) axis split over data_axis,
  // replicated over the mesh's other axes. InvalidArgumentError if the mesh has no such axis.
  NamedSharding create_data_parallel_sharding(const Mesh& mesh,
                                              const std::string& data_axis = "data") const;

  // Every leaf of the batch split by `sharding`. For CPU devices and a split along the leading axis
  // the shards are views of the batch's buffers: no copy. A leaf whose leading dimension does not
  // divide throws, naming the key path, the size and the axis. A scalar leaf (a data::Loader
  // batch's "count" of real examples) has no batch axis: it is replicated, the same on every device.
  // The batch is this process's part of the global batch (ShardedArray::from_process_local): in a
  // single process the whole batch; under mpirun each process passes only its slice (what its
  // data::Loader gives), and the result describes the global batch.
  ShardedTree shard_batch(const Tree& batch, const NamedSharding& sharding) const;
  ShardedArray shard_batch(const Array& batch, const NamedSharding& sharding) const;

  // Every leaf of the state placed on the mesh: replicated by default, or by the PartitionSpec
  // given for its key path. Each device gets its own copy, so it may update it in place. A key in
  // `specs` that the state does not have throws KeyError naming it.
  ShardedTree shard_model_state(const Tree& state, const Mesh& mesh,
                                const std::map<std::string, PartitionSpec>& specs = {}) const;
  // Every leaf placed by the first rule its key path matches (sharding_rules.h), replicated when
  // none does; each device gets its own copy of its block. A rule that does not fit its leaf throws
  // naming the key, the rule, the spec, the shape and the mesh.
  ShardedTree shard_model_state(const Tree& state, const Mesh& mesh, const ShardingRules& rules) const;

  // Inside SPMD: the gradients averaged ("mean") or summed ("sum") over `axis_name`, the same on
  // every device of the group. Each device gets a Tree of the same keys and shapes as its own
  // grads (the full gradient, not a shard), in new buffers. reduce_type is case-insensitive;
  // anything else throws
  //   all_reduce_gradients: unknown reduce op "<value>"; valid: mean, sum
  // Without an axis: the enclosing SPMD function's axis when it has exactly one (the seed's
  // pmap(..., "batch")), else "data". Errors of the collective underneath name this call.
  Tree all_reduce_gradients(const Tree& grads, std::string_view reduce_type = "mean") const;
  Tree all_reduce_gradients(const Tree& grads, std::string_view reduce_type, const AxisNames& axis_name) const;
  Tree all_reduce_gradients(const Tree& grads, ReduceOp reduce_type) const;
  Tree all_reduce_gradients(const Tree& grads, ReduceOp reduce_type, const AxisNames& axis_name) const;
  // The same, in place: each leaf of grads becomes the reduction, without new buffers (a training
  // loop's form: no copy of the gradients per step). The leaves must be floating point for mean.
  void all_reduce_gradients_in_place(Tree& grads, std::string_view reduce_type = "mean") const;
  void all_reduce_gradients_in_place(Tree& grads, std::string_view reduce_type, const AxisNames& axis_name) const;
  // The same on one flat gradient buffer (or a bucket of one): one collective for all the
  // gradients it holds.
  void all_reduce_gradients_in_place(Array& flat_grads, ReduceOp reduce_type = ReduceOp::mean) const;
  void all_reduce_gradients_in_place(Array& flat_grads, ReduceOp reduce_type, const AxisNames& axis_name) const;
  // Outside SPMD, on per-device gradients (e.g. a pmap's stacked output): the reduction over the
  // devices, placed replicated on the same devices, each with its own copy.
  ShardedTree all_reduce_gradients(const ShardedTree& per_device_grads,
                                   std::string_view reduce_type = "mean") const;
};

}  // namespace datarax::distributed
