// Reductions as ops: sum and mean, over everything or over one axis, with their gradients.
#pragma once

#include "datarax/nn/graph.h"

namespace datarax::nn {

// Over every element: a 0-d result.
Var sum(Var x);
Var mean(Var x);
// Over one axis (negative counts from the end), which the result drops: [B, T, C] over axis 1 ->
// [B, C]. An axis outside -rank..rank-1 is refused naming the valid range.
Var sum(Var x, int axis);
Var mean(Var x, int axis);

}  // namespace datarax::nn
