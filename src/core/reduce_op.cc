#include "datarax/reduce_op.h"

#include <string>

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax {

std::string_view to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::mean: return "mean";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  return "invalid";
}

namespace {
bool equal_ignoring_case(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char c = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (c != lower[i]) return false;
  }
  return true;
}
}  // namespace

ReduceOp parse_reduce_op(std::string_view name, std::string_view op, std::initializer_list<ReduceOp> valid) {
  for (ReduceOp r : valid)
    if (equal_ignoring_case(name, to_string(r))) return r;
  throw InvalidArgumentError(std::string(op) + ": unknown reduce op " + detail::quoted(name) + "; valid: " +
                             detail::join(valid, ", ", [](ReduceOp r) { return std::string(to_string(r)); }));
}

}  // namespace datarax
