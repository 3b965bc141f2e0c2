#include "datarax/sharded_array.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "core/strings.h"
#include "datarax/device_discovery.h"
#include "datarax/process_collectives.h"
#include "sharding/block_copy.h"

namespace datarax {

namespace {

Shape block_shape(const std::vector<IndexRange>& index) {
  std::vector<std::int64_t> dims;
  for (const IndexRange& r : index) dims.push_back(r.size());
  return Shape(std::move(dims));
}

bool is_local(const Device& d) { return d.process_index == process_index(); }

// One block as bytes: its rank, its ranges, then its elements.
void append_block(std::vector<std::byte>& out, const Array& data, const std::vector<IndexRange>& index) {
  auto put = [&](std::int64_t v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + sizeof v);
  };
  put(static_cast<std::int64_t>(index.size()));
  for (const IndexRange& r : index) {
    put(r.start);
    put(r.stop);
  }
  // The region alone, dense: a view may not be contiguous, and a padded block holds more.
  Array dense = Array::empty(block_shape(index), data.dtype(), data.device());
  std::vector<IndexRange> leading;
  for (const IndexRange& r : index) leading.push_back({0, r.size()});
  detail::extract_block(data, leading, dense);
  out.insert(out.end(), dense.bytes().begin(), dense.bytes().end());
}

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
    const Shape shape = sharding.shard_shape(global.shape());  // padding included
    const bool view = options.placement == Placement::view_if_possible &&
                      device.kind == DeviceKind::cpu && global.device().kind == DeviceKind::cpu &&
                      detail::is_leading_block(global.shape(), index) && shape == block_shape(index);
    Array block;
    if (view) {
      block = global.rank() == 0 ? global.with_device(device)
                                 : global.slice(index[0].start, index[0].stop).with_device(device);
    } else {
      block = Array::empty(shape, global.dtype(), device);
      detail::extract_block(global, index, block);
    }
    shards.push_back({device, std::move(block), std::move(index)});
  }
  return ShardedArray(global.shape(), global.dtype(), sharding, std::move(shards));
}

ShardedArray ShardedArray::from_process_local(const Array& local, const NamedSharding& sharding,
                                              const ShardOptions& options) {
  const std::string op = options.op == "shard" ? std::string("from_process_local") : std::string(options.op);
  if (sharding.pads())
    throw InvalidArgumentError(op + ": " + sharding.to_string() + " pads; process-local data must split evenly");
  if (!sharding.mesh().spans_processes() || local.rank() == 0) return shard(local, sharding, options);
  // Which row blocks this process's devices hold: with a trial shape of one row per block.
  const int blocks = sharding.num_shards(local.rank())[0];
  std::vector<std::int64_t> trial_dims = local.shape().dims();
  trial_dims[0] = blocks;
  const Shape trial(trial_dims);
  sharding.validate(trial, op, options.key);
  std::set<std::int64_t> mine;
  for (const Device& d : sharding.mesh().devices())
    if (is_local(d)) mine.insert(sharding.index_of(d, trial)[0].start);
  const auto held = static_cast<std::int64_t>(mine.size());
  const std::string what = op + (options.key.empty() ? std::string() : " of " + detail::quoted(options.key));
  if (held == 0)
    throw InvalidArgumentError(what + ": this process has no device in " + sharding.mesh().to_string());
  if (*mine.rbegin() - *mine.begin() + 1 != held)
    throw InvalidArgumentError(what + ": this process's devices hold row blocks that are not contiguous under " +
                               sharding.to_string() + "; process-local data needs each process's devices "
                               "to hold one run of the leading axis (order the mesh by process)");
  const std::int64_t rows = local.shape()[0];
  if (rows % held != 0)
    throw InvalidArgumentError(what + ": dimension 0 has size " + std::to_string(rows) +
                               " in this process, not divisible by the " + std::to_string(held) +
                               " row blocks its devices hold under " + sharding.to_string());
  const std::int64_t per = rows / held;
  std::vector<std::int64_t> global_dims = local.shape().dims();
  global_dims[0] = per * blocks;
  const Shape global(global_dims);
  const std::int64_t first_row = *mine.begin() * per;
  std::vector<Shard> shards;
  for (const Device& device : sharding.mesh().devices()) {
    if (!is_local(device)) continue;
    std::vector<IndexRange> index = sharding.index_of(device, global);
    std::vector<IndexRange> in_local = index;
    in_local[0] = {index[0].start - first_row, index[0].stop - first_row};
    const bool view = options.placement == Placement::view_if_possible && device.kind == DeviceKind::cpu &&
                      local.device().kind == DeviceKind::cpu && detail::is_leading_block(local.shape(), in_local);
    Array block;
    if (view) {
      block = local.slice(in_local[0].start, in_local[0].stop).with_device(device);
    } else {
      block = Array::empty(block_shape(index), local.dtype(), device);
      detail::extract_block(local, in_local, block);
    }
    shards.push_back({device, std::move(block), std::move(index)});
  }
  return ShardedArray(global, local.dtype(), sharding, std::move(shards));
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
  if (sharding_.mesh().spans_processes()) {
    // Every process sends its distinct blocks to every process; each assembles the whole array.
    std::vector<std::byte> mine;
    std::set<std::vector<std::int64_t>> sent;
    for (const Shard& s : shards_) {
      std::vector<std::int64_t> key;
      for (const IndexRange& r : s.index) key.push_back(r.start);
      if (sent.insert(key).second) append_block(mine, s.data, s.index);
    }
    std::set<std::vector<std::int64_t>> done;
    std::int64_t covered = 0;
    for (const std::vector<std::byte>& from : process_all_gather(mine, "ShardedArray::gather")) {
      std::size_t at = 0;
      auto get = [&] {
        std::int64_t v = 0;
        std::memcpy(&v, from.data() + at, sizeof v);
        at += sizeof v;
        return v;
      };
      while (at < from.size()) {
        std::vector<IndexRange> index(static_cast<std::size_t>(get()));
        std::vector<std::int64_t> key;
        for (IndexRange& r : index) {
          r.start = get();
          r.stop = get();
          key.push_back(r.start);
        }
        Array block = Array::empty(block_shape(index), dtype_, home);
        std::memcpy(block.raw(), from.data() + at, block.nbytes());
        at += block.nbytes();
        if (!done.insert(key).second) continue;
        detail::insert_block(block, index, out);
        covered += block.numel();
      }
    }
    if (covered != shape_.numel())
      throw InvalidArgumentError("ShardedArray::gather: the processes' shards cover " + std::to_string(covered) +
                                 " of " + std::to_string(shape_.numel()) + " elements");
    return out;
  }
  // Each distinct block once: replicas hold equal data.
  std::set<std::vector<std::int64_t>> done;
  std::int64_t covered = 0;
  for (const Shard& s : shards_) {
    std::vector<std::int64_t> key;
    for (const IndexRange& r : s.index) key.push_back(r.start);
    if (!done.insert(key).second) continue;
    detail::insert_block(s.data, s.index, out);
    covered += block_shape(s.index).numel();
  }
  if (covered != shape_.numel())
    throw InvalidArgumentError("ShardedArray::gather: this process's shards cover " +
                               std::to_string(covered) + " of " + std::to_string(shape_.numel()) +
                               " elements; gathering across processes needs every process to call "
                               "gather");
  return out;
}

std::vector<Shard> ShardedArray::global_shards() const {
  if (!sharding_.mesh().spans_processes()) return shards_;
  const Array whole = gather();
  std::vector<Shard> out;
  for (const Device& device : sharding_.mesh().devices()) {
    std::vector<IndexRange> index = sharding_.index_of(device, shape_);
    Array block = Array::empty(sharding_.shard_shape(shape_), dtype_, whole.device());
    detail::extract_block(whole, index, block);
    out.push_back({device, std::move(block), std::move(index)});
  }
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
