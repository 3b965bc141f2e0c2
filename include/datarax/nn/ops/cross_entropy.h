// Softmax cross-entropy with integer labels as an op (the loss of a classifier), and accuracy.
//
//   loss = Σ_b mask[b] · (−log softmax(logits[b])[labels[b]]) / denom
//
// logits [..., C] (leading dimensions are examples: [B, C], or [B, T, C] for a language model),
// labels i32 [...] (an input Var, no gradient), mask [...] of logits' dtype (optional: every weight
// 1), denom a one-element Var (optional: Σ mask, or 1 where that is 0). Data-parallel code passes
// the GLOBAL number of real examples as denom, so that summing the devices' gradients gives the
// mean over the global batch. The kernels are nn/cross_entropy.h's (stable at any logit scale;
// a label outside 0..C-1 of an example whose mask is not 0 is refused, naming it).
#pragma once

#include <cstdint>
#include <optional>

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var softmax_cross_entropy(Var logits, Var labels, std::optional<Var> mask = std::nullopt,
                          std::optional<Var> denom = std::nullopt);

// Not differentiable: the number of examples (mask != 0) whose largest logit is at their label,
// computed on the values of the last forward pass.
std::int64_t count_correct(Var logits, Var labels, std::optional<Var> mask = std::nullopt);

}  // namespace datarax::nn
