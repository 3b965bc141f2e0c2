// Named-axis collectives, called from inside an SPMD function (run_spmd, shard_map, pmap).
//
// Each names one mesh axis or several; the collective spans the devices that differ only along
// those axes (Mesh::groups). Every device of such a group must make the same calls in the same
// order; mismatches raise CollectiveError on all of them. Results are new arrays (the inputs are
// untouched) and are identical on every member: reductions combine values in a fixed order.
//
//   Array g = pmean(grad, "batch");
//   Tree total = psum(metrics, {"data", "model"});
#pragma once

#include <array>
#include <initializer_list>
#include <span>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "datarax/array.h"
#include "datarax/reduce_op.h"
#include "datarax/tree.h"

namespace datarax {

class Communicator;

// One mesh axis name or several: a view of the names for the duration of a call (it does not own
// them, and does not allocate), as a parameter type. Up to kMaxAxes names.
class AxisNames {
 public:
  static constexpr int kMaxAxes = 8;

  AxisNames(const char* axis) : AxisNames(std::string_view(axis)) {}  // NOLINT: implicit by design
  AxisNames(const std::string& axis) : AxisNames(std::string_view(axis)) {}  // NOLINT
  AxisNames(std::string_view axis) : size_(1) { names_[0] = axis; }     // NOLINT
  AxisNames(std::initializer_list<std::string_view> axes) { assign(axes.begin(), axes.end()); }
  AxisNames(const std::vector<std::string>& axes) { assign(axes.begin(), axes.end()); }  // NOLINT

  std::span<const std::string_view> names() const { return {names_.data(), static_cast<std::size_t>(size_)}; }
  // The names as strings (allocates): for the Mesh functions that take them.
  std::vector<std::string> to_vector() const { return {names_.begin(), names_.begin() + size_}; }
  // "axis \"data\"" or "axes (data, model)".
  std::string to_string() const;

 private:
  template <class It>
  void assign(It first, It last);

  std::array<std::string_view, kMaxAxes> names_{};
  int size_ = 0;
};

// Sum / mean / max / min over the axes. pmean of an integer array gives f64.
Array psum(const Array& x, const AxisNames& axes);
Array pmean(const Array& x, const AxisNames& axes);
Array pmax(const Array& x, const AxisNames& axes);
Array pmin(const Array& x, const AxisNames& axes);
Tree psum(const Tree& x, const AxisNames& axes);
Tree pmean(const Tree& x, const AxisNames& axes);
Tree pmax(const Tree& x, const AxisNames& axes);
Tree pmin(const Tree& x, const AxisNames& axes);

// In place: x (every leaf of x) becomes the reduction over the axes, without allocating. Each
// member's buffer is read by the others during the call. This is the form for gradients in a
// training step, where a fresh buffer per step would be wasted memory traffic.
void all_reduce_in_place(Array& x, ReduceOp op, const AxisNames& axes);
void all_reduce_in_place(Tree& x, ReduceOp op, const AxisNames& axes);

// Without allocating, into a buffer the caller owns (for training loops):
//  - reduce_scatter_into: out (x.numel() / n elements) = block r of the reduction of every member's
//    x, flattened, for member r of n. x and out must not overlap.
//  - all_gather_into: block r of every member's out (n · x.numel() elements) = member r's x. x may be
//    this member's own block of out (in place).
void reduce_scatter_into(const Array& x, Array& out, ReduceOp op, const AxisNames& axes);
void all_gather_into(const Array& x, Array& out, const AxisNames& axes);

// Every member's x, in group-rank order: stacked along a new leading axis ([n, ...x.shape]) or,
// with tiled, concatenated along the existing one ([n * x.shape[0], ...]).
Array all_gather(const Array& x, const AxisNames& axes, bool tiled = false);
Tree all_gather(const Tree& x, const AxisNames& axes, bool tiled = false);

// The sum over the axes, split along the leading axis: member r gets block r. Without tiled, x's
// leading extent must equal the group size and the result drops that axis; with tiled, it must be
// divisible by the group size and the result keeps it ([x.shape[0] / n, ...]).
Array psum_scatter(const Array& x, const AxisNames& axes, bool tiled = false);
Tree psum_scatter(const Tree& x, const AxisNames& axes, bool tiled = false);

// Sends x along (source rank, destination rank) pairs; a member no pair targets gets zeros.
Array ppermute(const Array& x, const AxisNames& axes, const std::vector<std::pair<int, int>>& perm);
Tree ppermute(const Tree& x, const AxisNames& axes, const std::vector<std::pair<int, int>>& perm);

// Splits x's leading axis into n blocks, sends block j to member j, and concatenates what arrives
// along the leading axis in sender order (split and concat both on axis 0).
Array all_to_all(const Array& x, const AxisNames& axes);
Tree all_to_all(const Tree& x, const AxisNames& axes);

// The current device's communicator over the axes (communicator.h): collectives on typed spans of
// buffers the caller owns, e.g. communicator("data").all_reduce(std::span<float>(v), ReduceOp::sum).
// Inside SPMD only (InvalidArgumentError elsewhere); the reference is valid until the SPMD
// function returns, and like the named-axis functions it must be used from this device's thread.
Communicator& communicator(const AxisNames& axes);

// This device's rank in its group over the axes, and the group's size.
int axis_index(const AxisNames& axes);
int axis_size(const AxisNames& axes);
// Waits until every member of the group has arrived.
void barrier(const AxisNames& axes);

template <class It>
void AxisNames::assign(It first, It last) {
  for (; first != last; ++first) {
    if (size_ == kMaxAxes)
      throw InvalidArgumentError("AxisNames: more than " + std::to_string(kMaxAxes) + " axis names");
    names_[static_cast<std::size_t>(size_++)] = std::string_view(*first);
  }
}

}  // namespace datarax
