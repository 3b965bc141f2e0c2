// Softmax cross-entropy with integer labels, a per-example mask and a denominator; accuracy.
//
//   loss = Σ_b mask[b] · (−log softmax(logits[b])[labels[b]]) / denom
//
// The mask lets padded examples (a last batch that does not fill every device) count for nothing,
// and the denominator lets every device divide by the GLOBAL number of real examples, so that the
// sum of the devices' losses and gradients (an all-reduce with op sum) is the mean over the global
// batch. A mask entry is a weight (usually 0 or 1); examples whose mask is 0 may carry any label
// (padding often uses -1) and are not checked. Others need 0 <= label < C.
//
// Numerically stable at any logit scale: the log-sum-exp subtracts the row maximum, and the loss
// is computed from it, never from log(probability) (which would be log(0) for a tiny probability).
#pragma once

#include <cstdint>
#include <span>

namespace datarax::nn {

// probs [B, C]: overwritten with softmax(logits) row by row (must not alias logits); saved for
// backward.
// logits [B, C], labels [B], mask [B] (or empty: every weight 1), denom > 0 and finite.
// Returns the loss (accumulated in double).
double softmax_cross_entropy_forward(std::span<float> probs, std::span<const float> logits,
                                     std::span<const std::int32_t> labels,
                                     std::span<const float> mask, double denom, std::int64_t B,
                                     std::int64_t C);
double softmax_cross_entropy_forward(std::span<double> probs, std::span<const double> logits,
                                     std::span<const std::int32_t> labels,
                                     std::span<const double> mask, double denom, std::int64_t B,
                                     std::int64_t C);

// dlogits [B, C] = mask[b] · (probs[b, :] − onehot(labels[b])) / denom: the gradient of the loss
// above (whose own gradient is 1). OVERWRITTEN; dlogits may alias probs (in place).
void softmax_cross_entropy_backward(std::span<float> dlogits, std::span<const float> probs,
                                    std::span<const std::int32_t> labels,
                                    std::span<const float> mask, double denom, std::int64_t B,
                                    std::int64_t C);
void softmax_cross_entropy_backward(std::span<double> dlogits, std::span<const double> probs,
                                    std::span<const std::int32_t> labels,
                                    std::span<const double> mask, double denom, std::int64_t B,
                                    std::int64_t C);

// The number of examples with mask != 0 (or all, for an empty mask) whose largest logit is at
// their label; on a tie the first largest counts. Not weighted by the mask's value.
std::int64_t count_correct(std::span<const float> logits, std::span<const std::int32_t> labels,
                           std::span<const float> mask, std::int64_t B, std::int64_t C);
std::int64_t count_correct(std::span<const double> logits, std::span<const std::int32_t> labels,
                           std::span<const double> mask, std::int64_t B, std::int64_t C);

}  // namespace datarax::nn
