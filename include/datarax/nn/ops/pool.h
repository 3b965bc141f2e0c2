// Pooling as ops on NHWC inputs, with their gradients: Flax's nn.max_pool and nn.avg_pool.
//
//   y [N, OH, OW, C] = max_pool(x [N, H, W, C], {2, 2}, {2, 2})
//
// window (wh, ww) and strides (sh, sw) are each >= 1; OH, OW and the padding follow padding.h
// (Flax's default is VALID). Padded positions never win a max (Flax pads with -inf; with SAME every
// window holds at least one real element). max_pool's gradient goes to the window's maximum, the
// FIRST one in row-major window order on ties; the forward saves its position in a buffer the op
// allocates once.
//
// avg_pool divides by the whole window size (wh · ww) when count_include_pad is true — Flax's
// default (flax.linen.avg_pool(..., count_include_pad=True)), so SAME-padded border windows count
// their padding as zeros — and by the number of real elements in the window when it is false.
// With VALID padding both are the same.
#pragma once

#include <array>
#include <cstdint>

#include "datarax/nn/graph.h"
#include "datarax/nn/ops/padding.h"

namespace datarax::nn {

Var max_pool(Var x, std::array<std::int64_t, 2> window, std::array<std::int64_t, 2> strides,
             Padding padding = Padding::valid);
Var avg_pool(Var x, std::array<std::int64_t, 2> window, std::array<std::int64_t, 2> strides,
             Padding padding = Padding::valid, bool count_include_pad = true);

}  // namespace datarax::nn
