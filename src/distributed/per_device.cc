#include "distributed/per_device.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "core/reduce_kernels.h"
#include "core/strings.h"
#include "datarax/error.h"

namespace datarax::detail {

std::vector<Tree> per_device_trees(const ShardedTree& tree) {
  std::vector<Tree> out;
  if (tree.empty()) return out;
  // Every device's blocks: this process's, or, when the mesh spans processes, every process's
  // (global_shards gathers each leaf, collectively, in key order on every process).
  for (const auto& [key, leaf] : tree) {
    const std::vector<Shard> shards = leaf.global_shards();
    out.resize(shards.size());
    const bool stacked = leaf.shape().rank() > 0 && !leaf.sharding().spec().axes_of(0).empty();
    for (std::size_t i = 0; i < shards.size(); ++i) {
      Array block = shards[i].data;
      if (stacked && block.shape()[0] == 1) {
        std::vector<std::int64_t> rest(block.shape().dims().begin() + 1, block.shape().dims().end());
        block = block.reshape(Shape(std::move(rest)));
      }
      out[i].set(key, block);
    }
  }
  return out;
}

void check_per_device(const std::vector<Tree>& per_device, std::string_view op) {
  if (per_device.empty())
    throw InvalidArgumentError(std::string(op) + ": no per-device values given; pass one tree per device");
  const Tree& first = per_device.front();
  for (std::size_t i = 1; i < per_device.size(); ++i) {
    check_same_keys(first, per_device[i], op);
    for (const auto& [key, leaf] : first) {
      const Array& other = per_device[i].at(key);
      if (other.dtype() != leaf.dtype() || other.shape() != leaf.shape())
        throw InvalidArgumentError(std::string(op) + ": metric " + quoted(key) + " is " +
                                   std::string(to_string(leaf.dtype())) + leaf.shape().to_string() +
                                   " on device 0 but " + std::string(to_string(other.dtype())) +
                                   other.shape().to_string() + " on device " + std::to_string(i));
    }
  }
}

Tree reduce_per_device(const std::vector<Tree>& per_device, const std::map<std::string, ReduceOp>& ops,
                       std::string_view op) {
  check_per_device(per_device, op);
  Tree out;
  for (const auto& [key, leaf0] : per_device.front()) {
    const ReduceOp r = ops.at(key);
    const bool int_mean = r == ReduceOp::mean && !is_floating(leaf0.dtype());
    std::vector<Array> values;
    for (const Tree& t : per_device) values.push_back(int_mean ? t.at(key).astype(DType::f64) : t.at(key));
    Array result = Array::empty(leaf0.shape(), values[0].dtype(), leaf0.device());
    visit_dtype(result.dtype(), [&](auto tag) {
      using T = decltype(tag);
      std::vector<const T*> srcs;
      for (const Array& v : values) srcs.push_back(v.data<T>().data());
      T* dst = result.data<T>().data();
      reduce_range<T>(srcs.data(), static_cast<int>(srcs.size()), 0, result.numel(), r,
                      [&](std::int64_t off, const auto* acc, std::int64_t len) { store(dst + off, acc, len); });
    });
    out.set(key, std::move(result));
  }
  return out;
}

Tree stack_per_device(const std::vector<Tree>& per_device, std::string_view op) {
  check_per_device(per_device, op);
  const auto n = static_cast<std::int64_t>(per_device.size());
  Tree out;
  for (const auto& [key, leaf0] : per_device.front()) {
    std::vector<std::int64_t> dims = leaf0.shape().dims();
    dims.insert(dims.begin(), n);
    Array stacked = Array::empty(Shape(std::move(dims)), leaf0.dtype(), leaf0.device());
    for (std::int64_t i = 0; i < n; ++i)
      if (leaf0.nbytes() > 0)
        std::memcpy(static_cast<std::byte*>(stacked.raw()) + static_cast<std::size_t>(i) * leaf0.nbytes(),
                    per_device[static_cast<std::size_t>(i)].at(key).raw(), leaf0.nbytes());
    out.set(key, std::move(stacked));
  }
  return out;
}

std::map<std::string, ReduceOp> resolve_ops(const std::vector<std::string>& keys,
                                            const std::map<std::string, std::string>& names,
                                            ReduceOp fallback, std::string_view op) {
  std::map<std::string, ReduceOp> out;
  for (const auto& key : keys) out[key] = fallback;
  for (const auto& [key, name] : names) {
    if (out.find(key) == out.end())
      throw KeyError(std::string(op) + ": an op is given for " + quoted(key) +
                     ", which is not a metric; the metrics are " + list_or_none(keys));
    out[key] = parse_reduce_op(name, std::string(op) + " (for " + quoted(key) + ")");
  }
  return out;
}

}  // namespace datarax::detail
