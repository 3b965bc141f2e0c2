#include "datarax/tree_spec.h"

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax {

const PartitionSpec& TreeSpec::for_key(std::string_view key) const {
  auto it = per_key_.find(key);
  return it == per_key_.end() ? rest_ : it->second;
}

void TreeSpec::check_keys(const Tree& tree, std::string_view op, std::string_view what) const {
  for (const auto& [key, spec] : per_key_)
    if (!tree.contains(key))
      throw KeyError(std::string(op) + ": a PartitionSpec is given for " + detail::quoted(key) + ", which is not a key of the " +
                     std::string(what) + "; its keys are " + detail::list_or_none(tree.keys()));
}

}  // namespace datarax
