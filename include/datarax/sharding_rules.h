// ShardingRules: how a whole tree of parameters gets its layout — an ordered list of (key pattern,
// PartitionSpec), where the first rule whose pattern matches a leaf's key path decides its
// sharding, and a leaf no rule matches is replicated.
//
//   ShardingRules rules({{"dense_*/kernel", PartitionSpec{std::nullopt, "model"}},
//                        {"dense_*/bias", PartitionSpec{"model"}}});
//   ShardedTree placed = dp_module.shard_model_state(params, mesh, rules);
//
// Patterns are globs on key paths, matched against the whole key: `*` matches any run of
// characters within one segment (no '/'), `**` any run across segments, `?` one character other
// than '/'; every other character matches itself. (Globs, not regular expressions: key paths are
// paths, and a glob reads like one.) A rule may ask for padding: a dimension its axes do not divide
// is then padded at its end (Padding::pad), as fsdp_rules does; otherwise it is an error.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "datarax/mesh.h"
#include "datarax/named_sharding.h"
#include "datarax/partition_spec.h"
#include "datarax/shape.h"

namespace datarax {

struct ShardingRule {
  std::string pattern;
  PartitionSpec spec;
  Padding padding = Padding::none;
};

class ShardingRules {
 public:
  ShardingRules() = default;
  // Checks every pattern. (Explicit: a braced list of pairs stays a std::map<key, spec> for
  // shard_model_state's per-key overload.)
  explicit ShardingRules(std::vector<ShardingRule> rules);

  // Appends a rule (after the others: it matches only what they do not).
  ShardingRules& add(std::string pattern, PartitionSpec spec, Padding padding = Padding::none);

  // The first rule matching `key`, or null when none does (the leaf is replicated).
  const ShardingRule* match(std::string_view key) const;
  // The sharding of the leaf `key` of `shape` on `mesh`: its rule's (replicated for a scalar, which
  // has nothing to split, whatever rule matches it), checked against the mesh and
  // the shape. InvalidArgumentError naming the key, the rule, the spec, the shape and the mesh for
  // a spec naming an axis the mesh lacks, with more entries than the leaf has dimensions, or
  // splitting a dimension its axes do not divide (without padding).
  NamedSharding sharding_for(std::string_view key, const Shape& shape, const Mesh& mesh) const;

  const std::vector<ShardingRule>& rules() const { return rules_; }
  // "{dense_*/kernel: PartitionSpec(None, model), ...}".
  std::string to_string() const;

 private:
  std::vector<ShardingRule> rules_;
};

// Whether the glob `pattern` matches all of `key` (see the file comment).
bool glob_match(std::string_view pattern, std::string_view key);

// Everything replicated: plain data parallelism.
ShardingRules data_parallel_rules();
// Every leaf's leading dimension split over `axis`, padded where it does not divide (ZeRO-3 /
// FSDP's layout of parameters). A leaf with no dimension (a scalar, like an optimizer's count)
// stays replicated, as under every rule.
ShardingRules fsdp_rules(std::string axis = "data");

}  // namespace datarax
