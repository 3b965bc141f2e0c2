// shard_map: run a function on every device's shard of its inputs (JAX's shard_map).
//
//   auto step = shard_map(mesh, fn, PartitionSpec{"data"}, PartitionSpec{});
//   ShardedTree out = step(batch);   // fn(local_batch) ran once per device
//
// in_specs say how each input leaf is split over the mesh (the function sees its device's block);
// out_specs say how the per-device results form global arrays: a dimension whose spec names axes
// is the concatenation of the devices' blocks along those axes; devices that differ only along
// axes an out_spec does not name must return equal blocks. That is checked: the blocks are compared
// bitwise, and unequal replicas throw, naming the key and two devices that disagree (reduce such a
// value with psum/pmean first, or name the axis in its out_spec).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "datarax/mesh.h"
#include "datarax/partition_spec.h"
#include "datarax/sharded_tree.h"
#include "datarax/spmd.h"
#include "datarax/tree.h"
#include "datarax/tree_spec.h"

namespace datarax {

using SpmdFunction = std::function<Tree(const Tree&)>;

class ShardMapped {
 public:
  ShardMapped(Mesh mesh, SpmdFunction fn, TreeSpec in_specs, TreeSpec out_specs, SpmdOptions options);

  // Splits each leaf of `global` by in_specs (views where possible), runs the function on every
  // device, and assembles the outputs by out_specs.
  ShardedTree operator()(const Tree& global) const;
  // Inputs already placed on this mesh's devices: each device gets its own shards as they are.
  ShardedTree operator()(const ShardedTree& placed) const;

 private:
  ShardedTree run(const std::function<Tree(const Device&)>& local_input) const;

  Mesh mesh_;
  SpmdFunction fn_;
  TreeSpec in_specs_;
  TreeSpec out_specs_;
  SpmdOptions options_;
};

ShardMapped shard_map(Mesh mesh, SpmdFunction fn, TreeSpec in_specs, TreeSpec out_specs,
                      SpmdOptions options = {});

namespace detail {
// Forms global arrays from per-device result trees (one per mesh device of this process, in mesh
// order) as out_specs say; checks keys, shapes and replicas. `op` names the caller in messages.
ShardedTree assemble_outputs(const Mesh& mesh, const std::vector<Device>& devices,
                             const std::vector<Tree>& outputs, const TreeSpec& out_specs,
                             std::string_view op);
}  // namespace detail

}  // namespace datarax
