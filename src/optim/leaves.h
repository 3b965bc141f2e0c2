// Internal helpers of the optimizers: per-dtype dispatch on a leaf, and walking the state's
// buffers ("mu/<key>") in step with the gradients' keys without building key strings, so that an
// update allocates nothing. Error text is built only when a check fails.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/strings.h"
#include "datarax/error.h"
#include "datarax/tree.h"

namespace datarax::optim::detail {

using datarax::detail::number;  // core/strings.h

[[noreturn]] void throw_bad_dtype(std::string_view op, std::string_view what, std::string_view key,
                                  DType dtype);
[[noreturn]] void throw_missing(std::string_view op, std::string_view tree, std::string_view prefix,
                                std::string_view key);
[[noreturn]] void throw_extra(std::string_view op, std::string_view tree, std::string_view full_key);
[[noreturn]] void throw_unlike(std::string_view op, std::string_view what, std::string_view key,
                               const Array& a, const Array& like, std::string_view like_what);

// Calls fn(T{}) with T = float or double, the leaf's element type; DTypeError otherwise.
template <class Fn>
void visit_float(const Array& leaf, std::string_view op, std::string_view what,
                 std::string_view key, Fn&& fn) {
  if (leaf.dtype() == DType::f32)
    fn(float{});
  else if (leaf.dtype() == DType::f64)
    fn(double{});
  else
    throw_bad_dtype(op, what, key, leaf.dtype());
}

// Same dtype and shape as `like` (the gradient, unless like_what says otherwise).
inline void check_like(std::string_view op, std::string_view what, std::string_view key,
                       const Array& a, const Array& like,
                       std::string_view like_what = "the gradient") {
  if (a.dtype() != like.dtype() || a.shape() != like.shape())
    throw_unlike(op, what, key, a, like, like_what);
}

// Walks the leaves "prefix/<key>" of a tree (all leaves when prefix is empty) in key order, in
// step with another tree's keys: key order is preserved by a common prefix, so the n-th call of
// next() finds its leaf at the walker's position.
template <class TreeT>
class Walker {
 public:
  Walker(TreeT& tree, std::string_view tree_name, std::string_view prefix, std::string_view op)
      : it_(tree.begin()), end_(tree.end()), name_(tree_name), prefix_(prefix), op_(op) {
    while (it_ != end_ && !in_prefix(it_->first)) ++it_;
  }

  // The leaf for `key`, which must be the next one, of the same dtype and shape as `like`.
  auto& next(std::string_view key, const Array& like) {
    if (it_ == end_ || !matches(it_->first, key)) throw_missing(op_, name_, prefix_, key);
    auto& leaf = it_->second;
    check_like(op_, name_, it_->first, leaf, like);
    ++it_;
    return leaf;
  }

  // Every leaf under the prefix was visited (the tree has none the other lacks).
  void finish() const {
    if (it_ != end_ && in_prefix(it_->first)) throw_extra(op_, name_, it_->first);
  }

 private:
  bool in_prefix(std::string_view full) const {
    if (prefix_.empty()) return true;
    return full.size() > prefix_.size() && full.starts_with(prefix_) &&
           full[prefix_.size()] == '/';
  }
  bool matches(std::string_view full, std::string_view key) const {
    if (prefix_.empty()) return full == key;
    return in_prefix(full) && full.substr(prefix_.size() + 1) == key;
  }

  decltype(std::declval<TreeT&>().begin()) it_, end_;
  std::string_view name_, prefix_, op_;
};

// The state's "count" leaf, checked to be an i64 scalar; count_of gives its value to update.
const Array& checked_count(const Tree& state, std::string_view op);
std::int64_t& count_of(Tree& state, std::string_view op);

// A copy of every leaf.
Tree deep_copy(const Tree& tree);

// A state: count 0 and, per buffer prefix, zeros like every parameter.
Tree zero_state(const Tree& params, std::initializer_list<std::string_view> buffers,
                std::string_view op);

}  // namespace datarax::optim::detail
