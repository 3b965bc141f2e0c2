// conv2d's direct path for a convolution with ONE input channel and a 3x3 kernel (the first layer
// of an image model on grey images: the MNIST CNN's conv_0), f32 on AVX-512. With C_in = 1 an
// im2col product has an inner extent of 9: its patches (9 floats a row, gathered one by one) cost
// more than its products, and a product with K = 9 runs at half the kernel's rate. Here each output
// position is 9 FMAs per 16 output channels against the 9 kernel taps held in registers, with the
// bias and the ReLU applied before the one store; the backward accumulates dkernel and dbias in
// registers over the whole batch in one pass over dout (through the ReLU's mask, read from y).
// With a fused max pool (conv_pool.h) the forward keeps each window's maximum and its position
// only, and the backward sends the pooled gradient to it: the unpooled output never exists.
// The input gradient is not computed here: conv2d takes its im2col path for it (the first layer's
// input is data, so a model's step never needs it).
#pragma once

#include <cstdint>

#include "datarax/dtype.h"
#include "nn/ops/conv_pool.h"
#include "nn/ops/window.h"

namespace datarax::nn::detail {

// Whether the direct path runs this convolution: f32, C_in = 1, a 3x3 kernel (any strides and
// padding), on a CPU with AVX-512F.
bool conv_direct_applies(const Window2d& g, DType dtype);

// y [N, OH, OW, O] = x [N, H, W, 1] ⋆ k [3, 3, 1, O] + b [O] (b may be null), then max(·, 0) when
// relu. Overwrites y. With pool.on(), y is the pooled [N, QH, QW, O] and arg its maxima's
// positions (one byte each).
void conv_direct_forward(const Window2d& g, std::int64_t O, const float* x, const float* k, const float* b, bool relu,
                         const FusedPool& pool, float* y, std::uint8_t* arg);

// dk [3, 3, 1, O] = Σ patches ⊗ dout' and db [O] = Σ dout', dout' being dout where y > 0 when relu
// (the ReLU's derivative at 0 taken as 0), dout itself otherwise — with pool.on(), y and dout are
// the pooled ones and dout' goes to each window's maximum (arg) only. Either of dk and db may be
// null (skipped); each is written when its `fresh` flag is set (Op::backward_fresh), else added to.
void conv_direct_backward(const Window2d& g, std::int64_t O, const float* x, const float* y, bool relu,
                          const FusedPool& pool, const std::uint8_t* arg, const float* dout, float* dk, bool dk_fresh,
                          float* db, bool db_fresh);

}  // namespace datarax::nn::detail
