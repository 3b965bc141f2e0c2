#include "sharding/block_copy.h"

#include <cstring>

namespace datarax::detail {

namespace {

// Calls fn(global_offset, block_offset, bytes) for every contiguous run of the region `index` of a
// row-major `global` array, and where the run sits in a row-major block of shape `block` (at least
// the region's size in every dimension: a padded block has more). Runs are as long as possible:
// trailing dimensions that the region covers fully, and that the block does not pad, fold into one.
template <class Fn>
void for_each_run(const Shape& global, const std::vector<IndexRange>& index, const Shape& block, std::size_t itemsize,
                  Fn&& fn) {
  const int rank = global.rank();
  if (rank == 0) {
    fn(std::size_t{0}, std::size_t{0}, itemsize);
    return;
  }
  int k = rank - 1;  // innermost dimension not folded
  std::int64_t run = 1;
  while (k > 0 && index[static_cast<std::size_t>(k)].start == 0 && index[static_cast<std::size_t>(k)].stop == global[k] &&
         block[k] == global[k]) {
    run *= global[k];
    --k;
  }
  run *= index[static_cast<std::size_t>(k)].size();
  if (run == 0) return;
  for (int d = 0; d < k; ++d)
    if (index[static_cast<std::size_t>(d)].size() == 0) return;
  // Strides of the global array and of the block, in elements.
  std::vector<std::int64_t> gstride(static_cast<std::size_t>(rank), 1), bstride(static_cast<std::size_t>(rank), 1);
  for (int d = rank - 2; d >= 0; --d) {
    gstride[static_cast<std::size_t>(d)] = gstride[static_cast<std::size_t>(d + 1)] * global[d + 1];
    bstride[static_cast<std::size_t>(d)] = bstride[static_cast<std::size_t>(d + 1)] * block[d + 1];
  }
  // Odometer over dimensions 0..k-1.
  std::vector<std::int64_t> pos(static_cast<std::size_t>(k), 0);
  while (true) {
    std::int64_t g = index[static_cast<std::size_t>(k)].start * gstride[static_cast<std::size_t>(k)];
    std::int64_t b = 0;
    for (int d = 0; d < k; ++d) {
      g += (index[static_cast<std::size_t>(d)].start + pos[static_cast<std::size_t>(d)]) * gstride[static_cast<std::size_t>(d)];
      b += pos[static_cast<std::size_t>(d)] * bstride[static_cast<std::size_t>(d)];
    }
    fn(static_cast<std::size_t>(g) * itemsize, static_cast<std::size_t>(b) * itemsize, static_cast<std::size_t>(run) * itemsize);
    int d = k - 1;
    while (d >= 0) {
      auto& p = pos[static_cast<std::size_t>(d)];
      if (++p < index[static_cast<std::size_t>(d)].size()) break;
      p = 0;
      --d;
    }
    if (d < 0) return;
  }
}

}  // namespace

bool is_leading_block(const Shape& global, const std::vector<IndexRange>& index) {
  for (int d = 1; d < global.rank(); ++d)
    if (index[static_cast<std::size_t>(d)].start != 0 || index[static_cast<std::size_t>(d)].stop != global[d]) return false;
  return true;
}

void extract_block(const Array& global, const std::vector<IndexRange>& index, Array& block) {
  const auto* src = static_cast<const std::byte*>(global.raw());
  auto* dst = static_cast<std::byte*>(block.raw());
  bool padded = false;
  for (int d = 0; d < global.rank(); ++d) padded = padded || block.shape()[d] != index[static_cast<std::size_t>(d)].size();
  if (padded && block.nbytes() > 0) std::memset(dst, 0, block.nbytes());  // the padding is zeros
  for_each_run(global.shape(), index, block.shape(), global.itemsize(),
               [&](std::size_t g, std::size_t b, std::size_t n) { std::memcpy(dst + b, src + g, n); });
}

void insert_block(const Array& block, const std::vector<IndexRange>& index, Array& global) {
  const auto* src = static_cast<const std::byte*>(block.raw());
  auto* dst = static_cast<std::byte*>(global.raw());
  for_each_run(global.shape(), index, block.shape(), global.itemsize(),
               [&](std::size_t g, std::size_t b, std::size_t n) { std::memcpy(dst + g, src + b, n); });
}

}  // namespace datarax::detail
