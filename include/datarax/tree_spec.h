// TreeSpec: a PartitionSpec for every leaf of a tree — one for all leaves, or one per key path
// with a default for the rest. How shard_map's in_specs and out_specs, and a model state's
// placement (DataParallelModule::shard_model_state), lay out a whole tree.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "datarax/partition_spec.h"
#include "datarax/tree.h"

namespace datarax {

class TreeSpec {
 public:
  TreeSpec(PartitionSpec all = {}) : rest_(std::move(all)) {}  // NOLINT: implicit by design
  TreeSpec(std::map<std::string, PartitionSpec> per_key, PartitionSpec rest = {})
      : per_key_(per_key.begin(), per_key.end()), rest_(std::move(rest)) {}

  // The spec of the leaf at `key`: its own, else the default.
  const PartitionSpec& for_key(std::string_view key) const;
  // KeyError naming `op` and the first per-key entry that `tree` lacks; `what` names the tree in
  // the message ("tree", "state").
  void check_keys(const Tree& tree, std::string_view op, std::string_view what = "tree") const;

 private:
  std::map<std::string, PartitionSpec, std::less<>> per_key_;
  PartitionSpec rest_;
};

}  // namespace datarax
