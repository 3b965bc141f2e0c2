// Tensor-parallel linear layers (Megatron-LM, Shoeybi et al. 2019): a layer's weight split over a
// mesh axis ("model", of size M), each device computing with its part, inside SPMD. llm.c-style
// forward/backward pairs on raw spans, like linear.h (same conventions: row-major; dweight and
// dbias accumulate, +=; dinp is overwritten and may be empty, not computed).
//
// Megatron's two conjugate operators make the pairs exact:
//   f  identity in forward, all-reduce (sum) over the axis in backward — in front of a
//      column-parallel layer, whose input every device has whole;
//   g  all-reduce (sum) over the axis in forward, identity in backward — behind a row-parallel
//      layer, whose output every device needs whole.
// A column-parallel layer followed by a row-parallel one (an MLP block) therefore costs one
// all-reduce of the activations in forward (g) and one of the input gradient in backward (f) —
// none when the block's input is the data, whose gradient nobody needs.
//
// Column-parallel: weight [in_dim, out_local], bias [out_local], out_local = out_dim / M (this
// device's columns); input whole and the same on every device; output this device's columns.
// Row-parallel: weight [in_local, out_dim] (this device's rows), bias [out_dim] whole; input this
// device's columns of the previous layer's output; output whole and the same on every device, the
// bias added once, after the reduction.
#pragma once

#include <cstdint>
#include <span>

#include "datarax/collectives.h"

namespace datarax::nn {

// out [B, out_local] = inp [B, in_dim] · weight [in_dim, out_local] + bias [out_local]: f is the
// identity in forward, so this is linear_forward on the device's columns. No collective.
void column_parallel_linear_forward(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                                    std::span<const float> bias, std::int64_t B, std::int64_t in_dim,
                                    std::int64_t out_local);
void column_parallel_linear_forward(std::span<double> out, std::span<const double> inp, std::span<const double> weight,
                                    std::span<const double> bias, std::int64_t B, std::int64_t in_dim,
                                    std::int64_t out_local);

// dweight [in_dim, out_local] += inpᵀ · dout_local;  dbias [out_local] += Σ_b dout_local[b, :]
// dinp [B, in_dim] = f_backward(dout_local · weightᵀ): each device's partial product summed over
//                    `axis` (an all-reduce), so every device gets the whole input gradient.
//                    Empty: not computed, and no collective (every device of the axis must agree);
//                    weight is then not read and may be empty.
void column_parallel_linear_backward(std::span<float> dinp, std::span<float> dweight, std::span<float> dbias,
                                     std::span<const float> dout, std::span<const float> inp,
                                     std::span<const float> weight, std::int64_t B, std::int64_t in_dim,
                                     std::int64_t out_local, const AxisNames& axis);
void column_parallel_linear_backward(std::span<double> dinp, std::span<double> dweight, std::span<double> dbias,
                                     std::span<const double> dout, std::span<const double> inp,
                                     std::span<const double> weight, std::int64_t B, std::int64_t in_dim,
                                     std::int64_t out_local, const AxisNames& axis);

// out [B, out_dim] = g(inp_local [B, in_local] · weight [in_local, out_dim]) + bias [out_dim]: the
// partial products summed over `axis` (an all-reduce), then the bias, once.
void row_parallel_linear_forward(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                                 std::span<const float> bias, std::int64_t B, std::int64_t in_local,
                                 std::int64_t out_dim, const AxisNames& axis);
void row_parallel_linear_forward(std::span<double> out, std::span<const double> inp, std::span<const double> weight,
                                 std::span<const double> bias, std::int64_t B, std::int64_t in_local,
                                 std::int64_t out_dim, const AxisNames& axis);

// g is the identity in backward, so this is linear_backward on the device's rows: dinp [B,
// in_local] = dout · weightᵀ, dweight [in_local, out_dim] += inp_localᵀ · dout, dbias [out_dim] +=
// Σ_b dout[b, :] (the same on every device, as dout is). No collective.
void row_parallel_linear_backward(std::span<float> dinp, std::span<float> dweight, std::span<float> dbias,
                                  std::span<const float> dout, std::span<const float> inp,
                                  std::span<const float> weight, std::int64_t B, std::int64_t in_local,
                                  std::int64_t out_dim);
void row_parallel_linear_backward(std::span<double> dinp, std::span<double> dweight, std::span<double> dbias,
                                  std::span<const double> dout, std::span<const double> inp,
                                  std::span<const double> weight, std::int64_t B, std::int64_t in_local,
                                  std::int64_t out_dim);

}  // namespace datarax::nn
