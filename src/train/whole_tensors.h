// Whole tensors from the blocks tensor parallelism leaves on each device of the model axis — what
// a snapshot, a checkpoint or --save holds whatever the layout.
#pragma once

#include "datarax/nn/parallel_mlp.h"
#include "datarax/tree.h"

namespace datarax::train::detail {

// Inside SPMD on a device of the model axis: `blocks` keyed like the parameters ("dense_<l>/kernel")
// or like an optimizer buffer ("mu/dense_<l>/kernel"; "count" and the like pass through), each the
// device's block under `model`'s splits; returns the whole tensors. Collective over the model axis
// for every split leaf, in key order; a leaf no split touches is returned as it is (a copy).
Tree whole_from_blocks(const Tree& blocks, const nn::ParallelMlpConfig& model);

}  // namespace datarax::train::detail
