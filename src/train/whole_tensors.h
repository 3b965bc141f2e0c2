// Whole tensors from tensor-parallel blocks (for snapshots and the final parameters).
#pragma once

#include <map>
#include <string>

#include "datarax/tree.h"

namespace datarax::train::detail {

// By parameter key: the dimension tensor parallelism splits over the model axis (a key absent is
// held whole by every model device).
using SplitDims = std::map<std::string, int>;

// `blocks`: this device's blocks, keyed like the parameters or like an optimizer state buffer of
// them ("mu/dense_0/kernel": the key after its first segments is looked up). The split ones are
// all-gathered over `model_axis` and joined along their dimension (collective over "model");
// the rest are copied.
Tree whole_from_blocks(const Tree& blocks, const SplitDims& split, const std::string& model_axis);

}  // namespace datarax::train::detail
