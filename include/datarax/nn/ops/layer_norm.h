// layer_norm over the last axis, with its gradient (llm.c's layernorm_forward/backward):
//
//   x [..., C], scale [C], bias [C] -> y [..., C]
//   y = (x − mean) · rstd · scale + bias,  mean and var over the last axis (biased variance, as
//   PyTorch and Flax), rstd = 1 / √(var + eps)
//
// The op keeps mean and rstd per row (2 · rows elements of x's dtype, allocated at recording) for
// its backward. eps must be > 0 and finite; scale and bias must have shape [C].
#pragma once

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var layer_norm(Var x, Var scale, Var bias, double eps = 1e-5);

}  // namespace datarax::nn
