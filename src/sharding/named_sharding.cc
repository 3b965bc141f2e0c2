#include "datarax/named_sharding.h"

#include <algorithm>

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax {

namespace {

std::string axes_phrase(const Mesh& mesh, const std::vector<std::string>& axes) {
  if (axes.size() == 1)
    return "mesh axis " + detail::quoted(axes[0]) + " of size " +
           std::to_string(mesh.axis_size(axes[0]));
  return "mesh axes (" + detail::join(axes, ", ") + ") of total size " +
         std::to_string(mesh.group_size(axes));
}

std::string array_phrase(std::string_view key, const Shape& shape) {
  if (key.empty()) return "the array (shape " + shape.to_string() + ")";
  return detail::quoted(key) + " (shape " + shape.to_string() + ")";
}

}  // namespace

NamedSharding::NamedSharding(Mesh mesh, PartitionSpec spec, Padding padding)
    : mesh_(std::move(mesh)), spec_(std::move(spec)), padding_(padding) {
  std::vector<std::string> used;
  for (const std::string& axis : spec_.mesh_axes()) {
    if (!mesh_.has_axis(axis))
      throw InvalidArgumentError("NamedSharding: " + spec_.to_string() + " names axis " +
                                 detail::quoted(axis) + ", which is not in the mesh; its axes are (" +
                                 detail::join(mesh_.axis_names(), ", ") + ")");
    if (std::find(used.begin(), used.end(), axis) != used.end())
      throw InvalidArgumentError("NamedSharding: " + spec_.to_string() + " uses mesh axis " +
                                 detail::quoted(axis) + " twice; each axis may split one dimension once");
    used.push_back(axis);
  }
}

void NamedSharding::validate(const Shape& shape, std::string_view op, std::string_view key) const {
  if (spec_.size() > shape.rank())
    throw InvalidArgumentError(std::string(op) + ": " + spec_.to_string() + " has " +
                               std::to_string(spec_.size()) +
                               (spec_.size() == 1 ? " entry but " : " entries but ") +
                               array_phrase(key, shape) + " has rank " +
                               std::to_string(shape.rank()));
  for (int d = 0; d < spec_.size(); ++d) {
    const auto& axes = spec_.axes_of(d);
    if (axes.empty()) continue;
    const int n = mesh_.group_size(axes);
    if (shape[d] % n != 0 && !pads()) {
      const std::string of = key.empty() ? " of the array (shape " + shape.to_string() + ")"
                                         : " of " + detail::quoted(key);
      throw InvalidArgumentError(std::string(op) + ": dimension " + std::to_string(d) + of +
                                 " has size " + std::to_string(shape[d]) +
                                 ", not divisible by " + axes_phrase(mesh_, axes));
    }
  }
}

std::vector<int> NamedSharding::num_shards(int rank) const {
  std::vector<int> out(static_cast<std::size_t>(rank), 1);
  for (int d = 0; d < std::min(rank, spec_.size()); ++d)
    out[static_cast<std::size_t>(d)] = mesh_.group_size(spec_.axes_of(d));
  return out;
}

Shape NamedSharding::shard_shape(const Shape& global_shape) const {
  validate(global_shape);
  std::vector<std::int64_t> dims = global_shape.dims();
  const std::vector<int> n = num_shards(global_shape.rank());
  for (std::size_t d = 0; d < dims.size(); ++d) dims[d] = (dims[d] + n[d] - 1) / n[d];
  return Shape(std::move(dims));
}

std::vector<IndexRange> NamedSharding::index_of(const Device& device,
                                                const Shape& global_shape) const {
  validate(global_shape);
  std::vector<IndexRange> out;
  for (int d = 0; d < global_shape.rank(); ++d) {
    const auto& axes = spec_.axes_of(d);
    if (axes.empty()) {
      out.push_back({0, global_shape[d]});
      continue;
    }
    const std::int64_t n = mesh_.group_size(axes);
    const std::int64_t block = (global_shape[d] + n - 1) / n;  // exact unless padding
    const std::int64_t i = mesh_.rank_in_group(device, axes);
    out.push_back({std::min(global_shape[d], i * block), std::min(global_shape[d], (i + 1) * block)});
  }
  return out;
}

int NamedSharding::replication_factor() const {
  return mesh_.size() / mesh_.group_size(spec_.mesh_axes());
}

std::string NamedSharding::to_string() const {
  return "NamedSharding(" + mesh_.to_string() + ", " + spec_.to_string() + (pads() ? ", padded" : "") + ")";
}

std::ostream& operator<<(std::ostream& os, const NamedSharding& sharding) {
  return os << sharding.to_string();
}

}  // namespace datarax
