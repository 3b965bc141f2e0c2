// Linear layer: out = inp · weight + bias, forward and backward side by side (llm.c style).
//
// Free functions on raw spans; the shapes are in the comments and every span's size is checked
// against them (InvalidArgumentError naming the function, the argument and both sizes). All
// matrices are row-major. One overload per element type: float for training, double for gradient
// checks against finite differences.
//
// Gradient outputs: dweight and dbias ACCUMULATE (+=), as in llm.c, so the gradients of several
// micro-batches add up; zero them before the first backward of a step. dinp is OVERWRITTEN (=).
//
// Matrix products go to CBLAS (OpenBLAS) on the calling thread; how many threads OpenBLAS itself
// uses is a process-wide setting, see datarax/nn/blas.h.
#pragma once

#include <cstdint>
#include <span>

namespace datarax::nn {

// out [B, out_dim] = inp [B, in_dim] · weight [in_dim, out_dim] + bias [out_dim]
// out is overwritten and must not alias inp, weight or bias.
void linear_forward(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                    std::span<const float> bias, std::int64_t B, std::int64_t in_dim,
                    std::int64_t out_dim);
void linear_forward(std::span<double> out, std::span<const double> inp,
                    std::span<const double> weight, std::span<const double> bias, std::int64_t B,
                    std::int64_t in_dim, std::int64_t out_dim);

// dinp    [B, in_dim]       =  dout · weightᵀ          (overwritten; may be empty: not computed,
//                                                       which saves a product for a first layer)
// dweight [in_dim, out_dim] += inpᵀ · dout              (accumulates)
// dbias   [out_dim]         += Σ_b dout[b, :]           (accumulates)
// dout [B, out_dim] is the gradient of the loss w.r.t. out; inp and weight are forward's inputs
// (weight is read for dinp only: with dinp empty it may be empty too).
// No output may alias another argument.
void linear_backward(std::span<float> dinp, std::span<float> dweight, std::span<float> dbias,
                     std::span<const float> dout, std::span<const float> inp,
                     std::span<const float> weight, std::int64_t B, std::int64_t in_dim,
                     std::int64_t out_dim);
void linear_backward(std::span<double> dinp, std::span<double> dweight, std::span<double> dbias,
                     std::span<const double> dout, std::span<const double> inp,
                     std::span<const double> weight, std::int64_t B, std::int64_t in_dim,
                     std::int64_t out_dim);

}  // namespace datarax::nn
