// Copying a rectangular block between a row-major global array and a dense block buffer.
#pragma once

#include <vector>

#include "datarax/array.h"
#include "datarax/named_sharding.h"

namespace datarax::detail {

// True when the block is a run of whole rows of the global array (every dimension but the first
// is full), so it can be a view of the global buffer.
bool is_leading_block(const Shape& global, const std::vector<IndexRange>& index);

// Copies the region `index` of `global` into `block`, a dense row-major array at least the
// region's size in every dimension: a padded block is larger, and its padding is set to zero.
void extract_block(const Array& global, const std::vector<IndexRange>& index, Array& block);
// Copies the region of `block` (its leading part in every dimension) into `index` of `global`.
void insert_block(const Array& block, const std::vector<IndexRange>& index, Array& global);

}  // namespace datarax::detail
