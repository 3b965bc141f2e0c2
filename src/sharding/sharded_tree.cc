#include "datarax/sharded_tree.h"

#include "core/strings.h"

namespace datarax {

namespace {

// Every leaf through `place` (one of ShardedArray's two ways in), each named by its key path.
template <class Place>
ShardedTree::Map place_leaves(const Tree& tree, const ShardOptions& options, Place&& place) {
  ShardedTree::Map out;
  for (const auto& [key, leaf] : tree) {
    ShardOptions leaf_options = options;
    leaf_options.key = key;
    out.emplace(key, place(leaf, leaf_options));
  }
  return out;
}

}  // namespace

ShardedTree ShardedTree::shard(const Tree& tree, const NamedSharding& sharding,
                               const ShardOptions& options) {
  ShardedTree out;
  out.leaves_ = place_leaves(tree, options, [&](const Array& leaf, const ShardOptions& o) {
    return ShardedArray::shard(leaf, sharding, o);
  });
  return out;
}

ShardedTree ShardedTree::from_process_local(const Tree& tree, const NamedSharding& sharding,
                                            const ShardOptions& options) {
  ShardedTree out;
  out.leaves_ = place_leaves(tree, options, [&](const Array& leaf, const ShardOptions& o) {
    return ShardedArray::from_process_local(leaf, sharding, o);
  });
  return out;
}

void ShardedTree::set(std::string key, ShardedArray value) {
  validate_key_path(key, "ShardedTree::set");
  leaves_.insert_or_assign(std::move(key), std::move(value));
}

const ShardedArray& ShardedTree::at(std::string_view key) const {
  auto it = leaves_.find(key);
  if (it == leaves_.end()) detail::throw_no_key("ShardedTree::at", key, keys());
  return it->second;
}

std::vector<std::string> ShardedTree::keys() const { return detail::keys_of(leaves_); }

Tree ShardedTree::local_tree(const Device& device) const {
  Tree out;
  for (const auto& [key, leaf] : leaves_) out.set(key, leaf.shard_for(device));
  return out;
}

Tree ShardedTree::gather() const {
  Tree out;
  for (const auto& [key, leaf] : leaves_) out.set(key, leaf.gather());
  return out;
}

ShardedTree ShardedTree::reshard(const NamedSharding& sharding, Placement placement) const {
  ShardedTree out;
  for (const auto& [key, leaf] : leaves_)
    out.leaves_.emplace(key, ShardedArray::shard(leaf.gather(), sharding,
                                                 {.placement = placement, .op = "reshard", .key = key}));
  return out;
}

std::string ShardedTree::to_string() const { return detail::leaves_to_string(leaves_); }

}  // namespace datarax
