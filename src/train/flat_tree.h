// FlatTree: a Tree whose leaves are views of one contiguous buffer per dtype, in key order.
//
// Why: a step's gradients in one buffer are reduced by one collective (or a few buckets) instead of
// one per leaf, and a device's slice of every parameter (ZeRO) is one range of it. The leaves are
// ordinary Arrays, so code that takes a Tree (the model's backward, the optimizer) writes straight
// into the buffer. Each buffer is padded at its end with zeros to a multiple of `multiple`
// elements, so that it splits into equal, cache-line aligned slices; the padding stays zero as
// long as whatever writes the buffer writes zeros there (reductions and elementwise optimizers of
// zeros do).
#pragma once

#include <cstdint>
#include <vector>

#include "datarax/array.h"
#include "datarax/tree.h"

namespace datarax::train::detail {

class FlatTree {
 public:
  FlatTree() = default;
  // Leaves with the keys, shapes and dtypes of `like`, holding its values (copy_values) or zeros,
  // in buffers on `device` padded to a multiple of `multiple` (>= 1) elements.
  FlatTree(const Tree& like, bool copy_values, std::int64_t multiple, Device device);

  Tree& tree() { return tree_; }
  const Tree& tree() const { return tree_; }
  // The buffers, one per dtype (in the order of the dtypes' first leaves), padding included.
  std::vector<Array>& buffers() { return buffers_; }
  const std::vector<Array>& buffers() const { return buffers_; }
  // This tree's layout over other buffers of the same sizes and dtypes: a leaf per key, viewing
  // its place in `buffers` (how a flat optimizer state is read as per-parameter leaves).
  Tree views_of(const std::vector<Array>& buffers) const;

 private:
  struct Place {
    std::size_t buffer;
    std::int64_t offset;
  };
  Tree tree_;
  std::vector<Array> buffers_;
  std::vector<Place> places_;  // by leaf, in key order
};

}  // namespace datarax::train::detail
