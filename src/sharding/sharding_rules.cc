#include "datarax/sharding_rules.h"

#include <vector>

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax {

namespace {

void check_pattern(const std::string& pattern) {
  if (pattern.empty()) throw InvalidArgumentError("ShardingRules: an empty pattern matches no key path; use ** for every key");
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view key) {
  // matches[j]: whether the pattern from position i on matches key[j:], filled from the end of the
  // pattern backwards (O(|pattern| x |key|): key paths are short, and no backtracking is needed).
  const std::size_t n = key.size();
  std::vector<char> next(n + 1, 0), cur(n + 1, 0);
  next[n] = 1;  // the empty pattern matches the empty rest
  for (std::size_t i = pattern.size(); i-- > 0;) {
    const bool double_star = pattern[i] == '*' && i > 0 && pattern[i - 1] == '*';
    if (double_star) continue;  // handled with the '*' before it
    const bool star = pattern[i] == '*';
    const bool crosses = star && i + 1 < pattern.size() && pattern[i + 1] == '*';
    // `after` is what follows this element: the row for i + 1, or i + 2 for "**".
    const std::vector<char>& after = next;
    for (std::size_t j = n + 1; j-- > 0;) {
      if (star) {
        // Empty, or one more character (not '/' for a single star) and the star again.
        cur[j] = after[j] || (j < n && (crosses || key[j] != '/') && cur[j + 1]);
      } else {
        cur[j] = j < n && (pattern[i] == key[j] || (pattern[i] == '?' && key[j] != '/')) && after[j + 1];
      }
    }
    std::swap(next, cur);
  }
  return next[0] != 0;
}

ShardingRules::ShardingRules(std::vector<ShardingRule> rules) : rules_(std::move(rules)) {
  for (const ShardingRule& r : rules_) check_pattern(r.pattern);
}

ShardingRules& ShardingRules::add(std::string pattern, PartitionSpec spec, Padding padding) {
  check_pattern(pattern);
  rules_.push_back({std::move(pattern), std::move(spec), padding});
  return *this;
}

const ShardingRule* ShardingRules::match(std::string_view key) const {
  for (const ShardingRule& r : rules_)
    if (glob_match(r.pattern, key)) return &r;
  return nullptr;
}

NamedSharding ShardingRules::sharding_for(std::string_view key, const Shape& shape, const Mesh& mesh) const {
  const ShardingRule* rule = match(key);
  if (rule == nullptr) return NamedSharding(mesh, PartitionSpec{});
  const std::string where = "sharding rule " + detail::quoted(rule->pattern) + " -> " + rule->spec.to_string() +
                            " for " + detail::quoted(key) + " of shape " + shape.to_string() + " on " + mesh.to_string();
  try {
    NamedSharding sharding(mesh, rule->spec, rule->padding);
    // A scalar (an optimizer's step count) has no dimension to split: replicated whatever rule
    // matches (its axes still checked against the mesh), so that a catch-all rule like
    // fsdp_rules' "**" needs no exception for it.
    if (shape.rank() == 0) return NamedSharding(mesh, PartitionSpec{});
    sharding.validate(shape, "sharding_for", key);
    return sharding;
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(where + ": " + e.what());
  }
}

std::string ShardingRules::to_string() const {
  return "{" +
         detail::join(rules_, ", ",
                      [](const ShardingRule& r) {
                        return r.pattern + ": " + r.spec.to_string() + (r.padding == Padding::pad ? " (padded)" : "");
                      }) +
         "}";
}

ShardingRules data_parallel_rules() { return {}; }

ShardingRules fsdp_rules(std::string axis) {
  return ShardingRules({{"**", PartitionSpec{std::move(axis)}, Padding::pad}});
}

}  // namespace datarax
