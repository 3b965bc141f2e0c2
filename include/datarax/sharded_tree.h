// ShardedTree: a Tree whose leaves are ShardedArrays — a batch, model state or gradients laid out
// over a mesh. Keys stay sorted, as in Tree.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "datarax/sharded_array.h"
#include "datarax/tree.h"

namespace datarax {

class ShardedTree {
 public:
  using Map = std::map<std::string, ShardedArray, std::less<>>;

  ShardedTree() = default;

  // Every leaf of `tree` sharded by the same sharding (a batch: all leaves split the same way).
  static ShardedTree shard(const Tree& tree, const NamedSharding& sharding,
                           const ShardOptions& options = {});
  // Every leaf through ShardedArray::from_process_local: the tree holds this process's part.
  static ShardedTree from_process_local(const Tree& tree, const NamedSharding& sharding,
                                        const ShardOptions& options = {});

  void set(std::string key, ShardedArray value);
  const ShardedArray& at(std::string_view key) const;
  bool contains(std::string_view key) const { return leaves_.find(key) != leaves_.end(); }
  std::size_t size() const { return leaves_.size(); }
  bool empty() const { return leaves_.empty(); }
  std::vector<std::string> keys() const;
  Map::const_iterator begin() const { return leaves_.begin(); }
  Map::const_iterator end() const { return leaves_.end(); }

  // The tree of blocks `device` holds: what that device's SPMD function sees.
  Tree local_tree(const Device& device) const;
  // Every leaf gathered to one host.
  Tree gather() const;
  // Every leaf under another sharding.
  ShardedTree reshard(const NamedSharding& sharding,
                      Placement placement = Placement::view_if_possible) const;

  std::string to_string() const;

 private:
  Map leaves_;
};

}  // namespace datarax
