// conv2d as an op: a 2-D convolution (cross-correlation, as Flax's nn.Conv and TensorFlow), NHWC
// inputs and HWIO kernels, with its gradients.
//
//   y [N, OH, OW, C_out] = conv2d(x [N, H, W, C_in], kernel [KH, KW, C_in, C_out], {.strides = {2, 2}})
//   y[n, oh, ow, o] = Σ_{kh, kw, i} x[n, oh·sh − pad_top + kh, ow·sw − pad_left + kw, i] · kernel[kh, kw, i, o]
//
// (+ bias[o] with the three-operand form), x read as 0 outside the image (padding.h gives OH, OW
// and the pads). The products run through nn::matmul (so bf16 scopes apply): the patches of a
// chunk of output rows are gathered (im2col) into a buffer the op allocates once, then one product
// [rows, KH·KW·C_in] · [KH·KW·C_in, C_out] per chunk; the backward gathers them again (the chunk
// stays in cache) for dkernel = colsᵀ · dout, and scatters dcols = dout · kernelᵀ back onto dx.
// A 1x1 kernel with stride 1 is one product on x itself.
#pragma once

#include <array>
#include <cstdint>

#include "datarax/nn/graph.h"
#include "datarax/nn/ops/padding.h"

namespace datarax::nn {

struct Conv2dOptions {
  std::array<std::int64_t, 2> strides{1, 1};  // (sh, sw), each >= 1
  Padding padding = Padding::same;            // Flax's nn.Conv default
  // relu(conv2d(...)) as one op: the same values and gradients (the derivative at 0 taken as 0),
  // but the ReLU runs on each chunk of output rows while it is in cache, and so does its gradient,
  // instead of two more passes over y and its gradient in memory.
  bool relu = false;
  // max_pool(conv2d(...), max_pool, max_pool) with VALID padding (after the ReLU when relu) as one
  // op: the output is [N, OH / ph, OW / pw, C_out] (rounded down; the convolution's rows left
  // over are not computed), with the same values and the same gradients as the two ops (the first
  // maximum in window order takes the gradient on ties). Each chunk of output rows
  // is pooled while it is in cache, and the backward spreads the pooled gradient from one byte per
  // output element, so the convolution's unpooled output never reaches memory. {1, 1}: no pooling.
  // Each extent >= 1, at most the convolution's output extent, ph · pw <= 256.
  std::array<std::int64_t, 2> max_pool{1, 1};
};

Var conv2d(Var x, Var kernel, Conv2dOptions options = {});
// With a bias [C_out] added to every output position (fused: no separate pass over y).
Var conv2d(Var x, Var kernel, Var bias, Conv2dOptions options = {});

}  // namespace datarax::nn
