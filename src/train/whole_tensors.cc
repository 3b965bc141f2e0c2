#include "train/whole_tensors.h"

#include <cstring>

#include "datarax/collectives.h"

namespace datarax::train::detail {

namespace {

// The layer and part ("kernel" or "bias") of a key ending in "dense_<l>/<part>", or layer -1.
std::pair<int, bool> parameter_of(const std::string& key) {
  const std::size_t at = key.rfind("dense_");
  if (at == std::string::npos) return {-1, false};
  const std::size_t slash = key.find('/', at);
  if (slash == std::string::npos) return {-1, false};
  return {std::stoi(key.substr(at + 6, slash - at - 6)), key.compare(slash + 1, std::string::npos, "kernel") == 0};
}

}  // namespace

Tree whole_from_blocks(const Tree& blocks, const nn::ParallelMlpConfig& model) {
  Tree out;
  for (const auto& [key, block] : blocks) {
    const auto [layer, kernel] = parameter_of(key);
    const nn::LayerSplit split = layer >= 0 && layer < static_cast<int>(model.splits.size())
                                     ? model.splits[static_cast<std::size_t>(layer)]
                                     : nn::LayerSplit::none;
    const bool columns = split == nn::LayerSplit::column && kernel;         // split along dimension 1
    const bool rows = (split == nn::LayerSplit::column && !kernel) ||       // split along dimension 0
                      (split == nn::LayerSplit::row && kernel);
    if (!columns && !rows) {
      out.set(key, block.copy());
      continue;
    }
    if (rows) {  // the blocks stacked along dimension 0 are the whole
      out.set(key, all_gather(block, model.model_axis, /*tiled=*/true));
      continue;
    }
    // Columns: block [in, out/M] of every device, side by side.
    const Array stacked = all_gather(block, model.model_axis);  // [M, in, out/M]
    const std::int64_t M = stacked.shape()[0], in = block.shape()[0], cols = block.shape()[1];
    Array whole = Array::empty({in, M * cols}, block.dtype(), block.device());
    const std::size_t row_bytes = static_cast<std::size_t>(cols) * block.itemsize();
    const auto* src = static_cast<const std::byte*>(stacked.raw());
    auto* dst = static_cast<std::byte*>(whole.raw());
    for (std::int64_t r = 0; r < M; ++r)
      for (std::int64_t i = 0; i < in; ++i)
        std::memcpy(dst + static_cast<std::size_t>(i * M + r) * row_bytes, src + static_cast<std::size_t>(r * in + i) * row_bytes,
                    row_bytes);
    out.set(key, whole);
  }
  return out;
}

}  // namespace datarax::train::detail
