#include "comm/collective_call.h"

#include "core/strings.h"

namespace datarax {

std::string_view to_string(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::all_reduce: return "all_reduce";
    case CollectiveKind::all_gather: return "all_gather";
    case CollectiveKind::reduce_scatter: return "reduce_scatter";
    case CollectiveKind::broadcast: return "broadcast";
    case CollectiveKind::all_to_all: return "all_to_all";
    case CollectiveKind::permute: return "permute";
    case CollectiveKind::barrier: return "barrier";
  }
  return "invalid";
}

std::string CollectiveDesc::to_string() const {
  std::string s(datarax::to_string(kind));
  if (kind == CollectiveKind::barrier) return s + "()";
  s += "(";
  if (kind == CollectiveKind::all_reduce || kind == CollectiveKind::reduce_scatter)
    s += std::string(datarax::to_string(op)) + ", ";
  s += std::string(datarax::to_string(dtype)) + "[" + std::to_string(count) + "]";
  if (kind == CollectiveKind::broadcast) s += ", root " + std::to_string(root);
  if (kind == CollectiveKind::permute)
    s += ", send_to [" + detail::join(send_to, ", ", [](int r) { return std::to_string(r); }) + "]";
  return s + ")";
}

}  // namespace datarax

namespace datarax::detail {

bool same_call(const CollectiveDesc& a, const CollectiveDesc& b) {
  const bool reduces = a.kind == CollectiveKind::all_reduce || a.kind == CollectiveKind::reduce_scatter;
  return a.kind == b.kind && a.dtype == b.dtype && a.count == b.count && (!reduces || a.op == b.op) &&
         a.root == b.root && a.send_to == b.send_to;
}

std::string mismatch_message(std::string_view label, const std::string& group, const Device& a_device,
                             const CollectiveDesc& a, const Device& b_device, const CollectiveDesc& b) {
  return std::string(label) + ": mismatched collectives in the group over " + group + ": " + a_device.to_string() + " called " +
         a.to_string() + " but " + b_device.to_string() + " called " + b.to_string();
}


}  // namespace datarax::detail
