// reshape: the same elements, row-major, in another shape (flatten is reshape to [B, -1]).
#pragma once

#include <cstdint>
#include <vector>

#include "datarax/nn/graph.h"

namespace datarax::nn {

// One extent may be -1: inferred from the element count. A shape whose element count differs
// from x's is refused naming both.
Var reshape(Var x, std::vector<std::int64_t> shape);
// [B, ...] -> [B, rest]: what a convolutional stack hands to its dense layers.
Var flatten(Var x);

}  // namespace datarax::nn
