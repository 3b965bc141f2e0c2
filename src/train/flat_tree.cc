#include "train/flat_tree.h"

#include <algorithm>
#include <string>

namespace datarax::train::detail {

FlatTree::FlatTree(const Tree& like, bool copy_values, std::int64_t multiple, Device device) {
  std::vector<DType> dtypes;
  std::vector<std::int64_t> sizes;
  for (const auto& [key, leaf] : like) {
    const auto it = std::find(dtypes.begin(), dtypes.end(), leaf.dtype());
    if (it == dtypes.end()) {
      dtypes.push_back(leaf.dtype());
      sizes.push_back(leaf.numel());
    } else {
      sizes[static_cast<std::size_t>(it - dtypes.begin())] += leaf.numel();
    }
  }
  std::vector<std::int64_t> offsets(dtypes.size(), 0);
  for (std::size_t b = 0; b < dtypes.size(); ++b) {
    const std::int64_t padded = (sizes[b] + multiple - 1) / multiple * multiple;
    buffers_.push_back(Array::zeros({padded}, dtypes[b], device));
  }
  for (const auto& [key, leaf] : like) {
    const std::size_t b = static_cast<std::size_t>(std::find(dtypes.begin(), dtypes.end(), leaf.dtype()) - dtypes.begin());
    Array view = buffers_[b].slice(offsets[b], offsets[b] + leaf.numel()).reshape(leaf.shape());
    if (copy_values) view.copy_from(leaf);
    tree_.set(key, view);
    places_.push_back({b, offsets[b]});
    offsets[b] += leaf.numel();
  }
}

Tree FlatTree::views_of(const std::vector<Array>& buffers) const {
  Tree out;
  auto place = places_.begin();
  for (const auto& [key, leaf] : tree_) {
    const Array& buffer = buffers.at(place->buffer);
    if (buffer.numel() != buffers_[place->buffer].numel() || buffer.dtype() != leaf.dtype())
      throw InvalidArgumentError("FlatTree::views_of: buffer " + std::to_string(place->buffer) + " is " +
                                 std::string(to_string(buffer.dtype())) + buffer.shape().to_string() + "; expected " +
                                 std::string(to_string(leaf.dtype())) + buffers_[place->buffer].shape().to_string());
    out.set(key, buffer.slice(place->offset, place->offset + leaf.numel()).reshape(leaf.shape()));
    ++place;
  }
  return out;
}

}  // namespace datarax::train::detail
