#include "train/whole_tensors.h"

#include <cstring>

#include "datarax/collectives.h"

namespace datarax::train::detail {

namespace {

// The split dimension of `key` or of the parameter key it ends in; -1 when held whole.
int split_dim(const SplitDims& split, std::string key) {
  for (;;) {
    if (const auto it = split.find(key); it != split.end()) return it->second;
    const std::size_t slash = key.find('/');
    if (slash == std::string::npos) return -1;
    key = key.substr(slash + 1);
  }
}

}  // namespace

Tree whole_from_blocks(const Tree& blocks, const SplitDims& split, const std::string& model_axis) {
  Tree out;
  for (const auto& [key, block] : blocks) {
    const int dim = split_dim(split, key);
    if (dim < 0) {
      out.set(key, block.copy());
      continue;
    }
    if (dim == 0) {  // the blocks stacked along dimension 0 are the whole
      out.set(key, all_gather(block, model_axis, /*tiled=*/true));
      continue;
    }
    // Along dimension d > 0: every device's block [outer..., b_d, inner...], side by side in d.
    const Array stacked = all_gather(block, model_axis);  // [M, block...]
    const std::int64_t M = stacked.shape()[0];
    std::int64_t outer = 1;
    for (int i = 0; i < dim; ++i) outer *= block.shape()[i];
    const std::size_t chunk = static_cast<std::size_t>(block.numel() / outer) * block.itemsize();  // one outer index's part
    std::vector<std::int64_t> dims(block.shape().begin(), block.shape().end());
    dims[static_cast<std::size_t>(dim)] *= M;
    Array whole = Array::empty(Shape(dims), block.dtype(), block.device());
    const auto* src = static_cast<const std::byte*>(stacked.raw());
    auto* dst = static_cast<std::byte*>(whole.raw());
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t r = 0; r < M; ++r)
        std::memcpy(dst + static_cast<std::size_t>(o * M + r) * chunk, src + static_cast<std::size_t>(r * outer + o) * chunk, chunk);
    out.set(key, whole);
  }
  return out;
}

}  // namespace datarax::train::detail
