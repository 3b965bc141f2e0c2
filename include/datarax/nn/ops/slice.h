// Pieces along one axis: slice, concat and split, with their gradients.
//
//   slice(x, axis, start, stop): x's elements with start <= index < stop along axis (numpy's
//     x[..., start:stop, ...]); 0 <= start <= stop <= extent, else refused naming the range.
//   concat(xs, axis): the pieces one after another along axis; every other extent must agree.
//   split(x, axis, sizes): the inverse of concat — pieces of the given extents along axis, which
//     must sum to x's extent. Implemented as one slice op per piece (the graph has one output per
//     node), so each piece's gradient flows back on its own; a piece no loss uses costs its copy.
//
// The axis may be negative (−1 is the last). Outputs are their own buffers (copies).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var slice(Var x, int axis, std::int64_t start, std::int64_t stop);
Var concat(std::span<const Var> xs, int axis);
inline Var concat(std::initializer_list<Var> xs, int axis) { return concat(std::span<const Var>(xs.begin(), xs.size()), axis); }
std::vector<Var> split(Var x, int axis, std::span<const std::int64_t> sizes);
inline std::vector<Var> split(Var x, int axis, std::initializer_list<std::int64_t> sizes) {
  return split(x, axis, std::span<const std::int64_t>(sizes.begin(), sizes.size()));
}

}  // namespace datarax::nn
