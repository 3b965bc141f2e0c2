#include "datarax/pmap.h"

#include "core/strings.h"
#include "datarax/device_discovery.h"
#include "datarax/shard_map.h"

namespace datarax {

std::string_view to_string(PmapOutput output) {
  switch (output) {
    case PmapOutput::stacked: return "stacked";
    case PmapOutput::replicated: return "replicated";
  }
  return "invalid";
}

namespace detail {

namespace {

// The devices pmap runs on: those of the placed inputs' mesh (all must agree), else every local one.
std::vector<Device> pmap_devices(const std::vector<PmapInput>& inputs) {
  std::optional<std::vector<Device>> devices;
  for (const PmapInput& in : inputs) {
    const auto* placed = std::get_if<const ShardedTree*>(&in);
    if (placed == nullptr) continue;
    for (const auto& [key, leaf] : **placed) {
      const std::vector<Device>& these = leaf.sharding().mesh().devices();
      if (!devices) {
        devices = these;
      } else if (*devices != these) {
        throw InvalidArgumentError("pmap: input " + quoted(key) + " is placed on " +
                                   leaf.sharding().mesh().to_string() +
                                   ", other inputs on other devices; every placed input must use the same devices");
      }
    }
  }
  return devices ? *devices : local_devices();
}

// Device i's view of a Tree mapped over its leading axis: x[i], the leading axis dropped.
Tree mapped_slice(const Tree& tree, int i, int n, const Device& device, std::size_t arg) {
  Tree out;
  for (const auto& [key, leaf] : tree) {
    if (leaf.rank() == 0 || leaf.shape()[0] != n)
      throw InvalidArgumentError("pmap: argument " + std::to_string(arg) + ", leaf " + quoted(key) +
                                 " has shape " + leaf.shape().to_string() +
                                 "; pmap maps over the leading axis, whose size must equal the number of devices (" +
                                 std::to_string(n) + ")");
    std::vector<std::int64_t> rest(leaf.shape().dims().begin() + 1, leaf.shape().dims().end());
    out.set(key, leaf.slice(i, i + 1).reshape(Shape(std::move(rest))).with_device(device));
  }
  return out;
}

}  // namespace

ShardedTree pmap_run(const std::string& axis_name, const PmapOptions& options,
                     const std::vector<PmapInput>& inputs,
                     const std::function<Tree(const std::vector<Tree>&)>& call) {
  const std::vector<Device> devices = pmap_devices(inputs);
  const int n = static_cast<int>(devices.size());
  const Mesh mesh(devices, {{axis_name, n}});
  // Check the mapped inputs on the caller's thread, where an error is clearest.
  for (std::size_t a = 0; a < inputs.size(); ++a)
    if (const auto* tree = std::get_if<const Tree*>(&inputs[a]))
      if (!(*tree)->empty()) mapped_slice(**tree, 0, n, devices[0], a);

  std::vector<Tree> outputs(devices.size());
  run_spmd(mesh, [&](const Device& d) {
    const int i = static_cast<int>(std::find(devices.begin(), devices.end(), d) - devices.begin());
    std::vector<Tree> local;
    for (std::size_t a = 0; a < inputs.size(); ++a) {
      if (const auto* tree = std::get_if<const Tree*>(&inputs[a]))
        local.push_back(mapped_slice(**tree, i, n, d, a));
      else
        local.push_back(std::get<const ShardedTree*>(inputs[a])->local_tree(d));
    }
    outputs[static_cast<std::size_t>(i)] = call(local);
  }, options.spmd);

  if (options.output == PmapOutput::replicated)
    return assemble_outputs(mesh, devices, outputs, TreeSpec(PartitionSpec{}), "pmap");
  // Stacked: a new leading axis of one block per device.
  for (Tree& out : outputs)
    out = out.map([](const Array& a) {
      std::vector<std::int64_t> dims = a.shape().dims();
      dims.insert(dims.begin(), 1);
      return a.reshape(Shape(std::move(dims)));
    });
  return assemble_outputs(mesh, devices, outputs, TreeSpec(PartitionSpec{axis_name}), "pmap");
}

}  // namespace detail
}  // namespace datarax
