#include "datarax/optim/clip.h"

#include <cmath>
#include <string>

#include "optim/leaves.h"

namespace datarax::optim {

double sum_of_squares(const Tree& tree) {
  double total = 0;
  for (const auto& entry : tree) {
    const Array& leaf = entry.second;  // named: a lambda may not capture a binding (clang 14)
    detail::visit_float(leaf, "sum_of_squares", "leaf", entry.first, [&](auto t) {
      using T = decltype(t);
      for (T v : leaf.template data<T>()) total += static_cast<double>(v) * static_cast<double>(v);
    });
  }
  return total;
}

double global_norm(const Tree& tree) { return std::sqrt(sum_of_squares(tree)); }

double clip_by_global_norm(Tree& updates, double max_norm) {
  return clip_by_global_norm(updates, max_norm, global_norm(updates));
}

double clip_by_global_norm(Tree& updates, double max_norm, double norm) {
  if (!(max_norm > 0))
    throw InvalidArgumentError("clip_by_global_norm: max_norm = " + detail::number(max_norm) +
                               " must be > 0");
  if (norm < max_norm) return norm;  // optax: trigger = g_norm < max_norm keeps the updates
  const double scale = max_norm / norm;
  for (auto& entry : updates) {
    Array& leaf = entry.second;  // named: a lambda may not capture a binding (clang 14)
    detail::visit_float(leaf, "clip_by_global_norm", "leaf", entry.first, [&](auto t) {
      using T = decltype(t);
      const T s = static_cast<T>(scale);
      for (T& v : leaf.template data<T>()) v *= s;
    });
  }
  return norm;
}

}  // namespace datarax::optim
