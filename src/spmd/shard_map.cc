#include "datarax/shard_map.h"

#include <set>

#include "core/strings.h"
#include "datarax/device_discovery.h"

namespace datarax {

namespace detail {

namespace {

std::vector<Device> local_mesh_devices(const Mesh& mesh) {
  std::vector<Device> out;
  for (const Device& d : mesh.devices())
    if (d.process_index == process_index()) out.push_back(d);
  return out;
}

}  // namespace

ShardedTree assemble_outputs(const Mesh& mesh, const std::vector<Device>& devices,
                             const std::vector<Tree>& outputs, const TreeSpec& out_specs,
                             std::string_view op) {
  ShardedTree result;
  if (outputs.empty()) return result;
  const Tree& first = outputs.front();
  out_specs.check_keys(first, op);
  for (std::size_t i = 1; i < outputs.size(); ++i) {
    try {
      check_same_keys(first, outputs[i], op);
    } catch (const KeyError& e) {
      throw KeyError(std::string(e.what()) + " (first tree: " + devices[0].to_string() +
                     "'s result, second: " + devices[i].to_string() + "'s)");
    }
  }
  for (const auto& [key, leaf0] : first) {
    const NamedSharding sharding(mesh, out_specs.for_key(key));
    const std::vector<int> n = sharding.num_shards(leaf0.rank());
    if (sharding.spec().size() > leaf0.rank())
      sharding.validate(leaf0.shape(), op, key);  // throws: more entries than dimensions
    std::vector<std::int64_t> dims = leaf0.shape().dims();
    for (std::size_t d = 0; d < dims.size(); ++d) dims[d] *= n[d];
    std::vector<Shard> shards;
    std::map<std::vector<std::int64_t>, std::size_t> holder;  // block start -> first device holding it
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const Array& leaf = outputs[i].at(key);
      if (leaf.shape() != leaf0.shape() || leaf.dtype() != leaf0.dtype())
        throw InvalidArgumentError(std::string(op) + ": output " + quoted(key) + " is " +
                                   std::string(to_string(leaf0.dtype())) + leaf0.shape().to_string() +
                                   " on " + devices[0].to_string() + " but " +
                                   std::string(to_string(leaf.dtype())) + leaf.shape().to_string() +
                                   " on " + devices[i].to_string() + "; every device must return the same shape");
      std::vector<IndexRange> index = sharding.index_of(devices[i], Shape(dims));
      std::vector<std::int64_t> start;
      for (const IndexRange& r : index) start.push_back(r.start);
      auto [it, fresh] = holder.emplace(start, i);
      if (!fresh && !bitwise_equal(leaf, outputs[it->second].at(key)))
        throw InvalidArgumentError(
            std::string(op) + ": output " + quoted(key) + " has out_spec " + sharding.spec().to_string() +
            ", which replicates it, but " + devices[it->second].to_string() + " and " +
            devices[i].to_string() + " returned different values; reduce it (psum, pmean) or name the "
            "axis it varies along in its out_spec");
      shards.push_back({devices[i], leaf.with_device(devices[i]), std::move(index)});
    }
    result.set(key, ShardedArray(Shape(std::move(dims)), leaf0.dtype(), sharding, std::move(shards)));
  }
  return result;
}

}  // namespace detail

ShardMapped::ShardMapped(Mesh mesh, SpmdFunction fn, TreeSpec in_specs, TreeSpec out_specs,
                         SpmdOptions options)
    : mesh_(std::move(mesh)),
      fn_(std::move(fn)),
      in_specs_(std::move(in_specs)),
      out_specs_(std::move(out_specs)),
      options_(options) {
  if (!fn_) throw InvalidArgumentError("shard_map: the function is empty");
}

ShardedTree ShardMapped::operator()(const Tree& global) const {
  in_specs_.check_keys(global, "shard_map");
  ShardedTree placed;
  for (const auto& [key, leaf] : global)
    placed.set(key, ShardedArray::shard(leaf, NamedSharding(mesh_, in_specs_.for_key(key)),
                                        {.placement = Placement::view_if_possible, .op = "shard_map", .key = key}));
  return (*this)(placed);
}

ShardedTree ShardMapped::operator()(const ShardedTree& placed) const {
  for (const auto& [key, leaf] : placed)
    for (const Device& d : detail::local_mesh_devices(mesh_))
      if (!leaf.sharding().mesh().contains(d))
        throw InvalidArgumentError("shard_map: input " + detail::quoted(key) + " is placed on " +
                                   leaf.sharding().mesh().to_string() + ", which lacks " + d.to_string() +
                                   " of the shard_map mesh " + mesh_.to_string());
  return run([&](const Device& d) { return placed.local_tree(d); });
}

ShardedTree ShardMapped::run(const std::function<Tree(const Device&)>& local_input) const {
  const std::vector<Device> devices = detail::local_mesh_devices(mesh_);
  std::vector<Tree> outputs(devices.size());
  run_spmd(mesh_, [&](const Device& d) {
    const auto i = static_cast<std::size_t>(std::find(devices.begin(), devices.end(), d) - devices.begin());
    outputs[i] = fn_(local_input(d));
  }, options_);
  return detail::assemble_outputs(mesh_, devices, outputs, out_specs_, "shard_map");
}

ShardMapped shard_map(Mesh mesh, SpmdFunction fn, TreeSpec in_specs, TreeSpec out_specs, SpmdOptions options) {
  return ShardMapped(std::move(mesh), std::move(fn), std::move(in_specs), std::move(out_specs), options);
}

}  // namespace datarax
