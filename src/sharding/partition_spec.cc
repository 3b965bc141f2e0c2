#include "datarax/partition_spec.h"

#include "core/strings.h"

namespace datarax {

const std::vector<std::string>& PartitionSpec::axes_of(int dim) const {
  static const std::vector<std::string> kReplicated;
  if (dim < 0 || dim >= size()) return kReplicated;
  return entries_[static_cast<std::size_t>(dim)].axes();
}

std::vector<std::string> PartitionSpec::mesh_axes() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.insert(out.end(), e.axes().begin(), e.axes().end());
  return out;
}

std::string PartitionSpec::to_string() const {
  return "PartitionSpec(" + detail::join(entries_, ", ", [](const Entry& e) -> std::string {
           if (e.replicated()) return "None";
           if (e.axes().size() == 1) return e.axes()[0];
           return "(" + detail::join(e.axes(), ", ") + ")";
         }) + ")";
}

std::ostream& operator<<(std::ostream& os, const PartitionSpec& spec) {
  return os << spec.to_string();
}

}  // namespace datarax
