#include "datarax/sharded_array.h"

#include <algorithm>
#include <set>

#include "core/strings.h"
#include "datarax/runtime.h"
#include "sharding/block_copy.h"

namespace datarax {

namespace {

Shape block_shape(const std::vector<IndexRange>& index) {
  std::vector<std::int64_t> dims;
  for (const IndexRange& r : index) dims.push_back(r.size());
  return Shape(std::move(dims));
}

bool is_local(const Device& d) { return d.process_index == process_index(); }

}  // namespace

std::string_view to_string(Placement placement) {
  switch (placement) {
    case Placement::view_if_possible: return "view_if_possible";
    case Placement::copy: return "copy";
  }
  return "invalid";
}

ShardedArray ShardedArray::shard(const Array& global, const NamedSharding& sharding,
                                 const ShardOptions& options) {
  sharding.validate(global.shape(), options.op, options.key);
  std::vector<Shard> shards;
  for (const Device& device : sharding.mesh().devices()) {
    if (!is_local(device)) continue;
    std::vector<IndexRange> index = sharding.index_of(device, global.shape());
    const bool view = options.placement == Placement::view_if_possible &&
                      device.kind == DeviceKind::cpu && global.device().kind == DeviceKind::cpu &&
                      detail::is_leading_block(global.shape(), index);
    Array block;
    if (view) {
      block = global.rank() == 0 ? global.with_device(device)
                                 : global.slice(index[0].start, index[0].stop).with_device(device);
    } else {
      block = Array::empty(block_shape(index), global.dtype(), device);
      detail::extract_block(global, index, block);
    }
    shards.push_back({device, std::move(block), std::move(index)});
  }
  return ShardedArray(global.shape(), global.dtype(), sharding, std::move(shards));
}

ShardedArray::ShardedArray(Shape global_shape, DType dtype, NamedSharding sharding,
                           std::vector<Shard> shards)
    : shape_(std::move(global_shape)),
      dtype_(dtype),
      sharding_(std::move(sharding)),
      shards_(std::move(shards)) {
  sharding_.validate(shape_, "ShardedArray");
  const Shape expected = sharding_.shard_shape(shape_);
  std::size_t local = 0;
  for (const Device& d : sharding_.mesh().devices())
    if (is_local(d)) ++local;
  if (shards_.size() != local)
    throw InvalidArgumentError("ShardedArray: " + std::to_string(shards_.size()) +
                               " shards given; the mesh has " + std::to_string(local) +
                               " devices in this process, one shard each");
  std::set<Device> seen;
  for (Shard& s : shards_) {
    if (!sharding_.mesh().contains(s.device) || !is_local(s.device) || !seen.insert(s.device).second)
      throw InvalidArgumentError("ShardedArray: shard on " + s.device.to_string() +
                                 " is not for a distinct local device of " +
                                 sharding_.mesh().to_string());
    if (s.data.device() != s.device)
      throw InvalidArgumentError("ShardedArray: the shard for " + s.device.to_string() +
                                 " holds an array on " + s.data.device().to_string() +
                                 "; place it with Array::with_device or copy_to first");
    if (s.data.dtype() != dtype_ || s.data.shape() != expected)
      throw InvalidArgumentError("ShardedArray: shard on " + s.device.to_string() + " is " +
                                 std::string(datarax::to_string(s.data.dtype())) +
                                 s.data.shape().to_string() + "; expected " +
                                 std::string(datarax::to_string(dtype_)) + expected.to_string());
    s.index = sharding_.index_of(s.device, shape_);
  }
}

const Array& ShardedArray::shard_for(const Device& device) const {
  for (const Shard& s : shards_)
    if (s.device == device) return s.data;
  throw InvalidArgumentError("ShardedArray::shard_for: no shard on " + device.to_string() +
                             " in this process; shards are on " +
                             detail::join(shards_, ", ", [](const Shard& s) { return s.device.to_string(); }));
}

Array ShardedArray::gather() const {
  const Device home = shards_.empty() ? Device{} : shards_.front().device;
  Array out = Array::empty(shape_, dtype_, home);
  // Each distinct block once: replicas hold equal data.
  std::set<std::vector<std::int64_t>> done;
  std::int64_t covered = 0;
  for (const Shard& s : shards_) {
    std::vector<std::int64_t> key;
    for (const IndexRange& r : s.index) key.push_back(r.start);
    if (!done.insert(key).second) continue;
    detail::insert_block(s.data, s.index, out);
    covered += s.data.numel();
  }
  if (covered != shape_.numel())
    throw InvalidArgumentError("ShardedArray::gather: this process's shards cover " +
                               std::to_string(covered) + " of " + std::to_string(shape_.numel()) +
                               " elements; gathering across processes needs every process to call "
                               "gather");
  return out;
}

ShardedArray ShardedArray::reshard(const NamedSharding& sharding, Placement placement) const {
  return shard(gather(), sharding, {.placement = placement, .op = "reshard"});
}

std::string ShardedArray::to_string() const {
  return "ShardedArray(" + std::string(datarax::to_string(dtype_)) + shape_.to_string() + ", " +
         sharding_.to_string() + ")";
}

}  // namespace datarax
