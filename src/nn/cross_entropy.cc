#include "datarax/nn/cross_entropy.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "datarax/error.h"
#include "nn/check.h"

namespace datarax::nn {

namespace {

constexpr std::int64_t kMaxDim = std::numeric_limits<std::int32_t>::max();

template <class T>
void check_args(const char* op, std::size_t logits_size, std::string_view logits_name,
                std::span<const std::int32_t> labels, std::span<const T> mask, std::int64_t B,
                std::int64_t C) {
  detail::check_dim(op, "B", B, std::numeric_limits<std::int64_t>::max());
  if (C < 1 || C > kMaxDim)
    throw InvalidArgumentError(std::string(op) + ": C = " + std::to_string(C) +
                               " classes is out of range (1.." + std::to_string(kMaxDim) + ")");
  detail::check_span(op, logits_name, logits_size, "[B, C]", {B, C});
  detail::check_span(op, "labels", labels.size(), "[B]", {B});
  if (!mask.empty()) detail::check_span(op, "mask", mask.size(), "[B] (or empty)", {B});
}

void check_denom(const char* op, double denom) {
  if (!(denom > 0) || !std::isfinite(denom))
    throw InvalidArgumentError(std::string(op) + ": denom = " + detail::number(denom) +
                               " must be > 0 and finite (it is the number of examples the loss "
                               "is averaged over)");
}

// The label of a counted example, checked against C.
std::int64_t checked_label(const char* op, std::span<const std::int32_t> labels, std::int64_t b,
                           std::int64_t C) {
  const std::int32_t label = labels[static_cast<std::size_t>(b)];
  if (label < 0 || label >= C)
    throw InvalidArgumentError(std::string(op) + ": labels[" + std::to_string(b) + "] = " +
                               std::to_string(label) + " is out of range (0.." +
                               std::to_string(C - 1) + "); only examples whose mask is 0 may "
                               "carry such a label");
  return label;
}

template <class T>
T weight_of(std::span<const T> mask, std::int64_t b) {
  return mask.empty() ? T(1) : mask[static_cast<std::size_t>(b)];
}

template <class T>
double forward(std::span<T> probs, std::span<const T> logits, std::span<const std::int32_t> labels,
               std::span<const T> mask, double denom, std::int64_t B, std::int64_t C) {
  constexpr const char* op = "softmax_cross_entropy_forward";
  check_args<T>(op, logits.size(), "logits", labels, mask, B, C);
  detail::check_span(op, "probs", probs.size(), "[B, C]", {B, C});
  check_denom(op, denom);
  double total = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const T* z = logits.data() + b * C;
    T* p = probs.data() + b * C;
    T max = z[0];
    for (std::int64_t c = 1; c < C; ++c) max = z[c] > max ? z[c] : max;
    T sum = 0;
    for (std::int64_t c = 0; c < C; ++c) {
      p[c] = std::exp(z[c] - max);
      sum += p[c];
    }
    const T inv = T(1) / sum;
    for (std::int64_t c = 0; c < C; ++c) p[c] *= inv;
    const T w = weight_of(mask, b);
    if (w == T(0)) continue;
    const std::int64_t label = checked_label(op, labels, b, C);
    // −log softmax(z)[label] = log Σ exp(z − max) − (z[label] − max)
    const T nll = std::log(sum) - (z[label] - max);
    total += static_cast<double>(w) * static_cast<double>(nll);
  }
  return total / denom;
}

template <class T>
void backward(std::span<T> dlogits, std::span<const T> probs, std::span<const std::int32_t> labels,
              std::span<const T> mask, double denom, std::int64_t B, std::int64_t C) {
  constexpr const char* op = "softmax_cross_entropy_backward";
  check_args<T>(op, probs.size(), "probs", labels, mask, B, C);
  detail::check_span(op, "dlogits", dlogits.size(), "[B, C]", {B, C});
  check_denom(op, denom);
  for (std::int64_t b = 0; b < B; ++b) {
    const T* p = probs.data() + b * C;
    T* d = dlogits.data() + b * C;
    const T w = weight_of(mask, b);
    if (w == T(0)) {
      for (std::int64_t c = 0; c < C; ++c) d[c] = T(0);
      continue;
    }
    const std::int64_t label = checked_label(op, labels, b, C);
    const T scale = static_cast<T>(static_cast<double>(w) / denom);
    for (std::int64_t c = 0; c < C; ++c) d[c] = scale * p[c];  // in place when d == p
    d[label] -= scale;
  }
}

template <class T>
std::int64_t correct(std::span<const T> logits, std::span<const std::int32_t> labels,
                     std::span<const T> mask, std::int64_t B, std::int64_t C) {
  check_args<T>("count_correct", logits.size(), "logits", labels, mask, B, C);
  std::int64_t n = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    if (weight_of(mask, b) == T(0)) continue;
    const T* z = logits.data() + b * C;
    std::int64_t arg = 0;
    for (std::int64_t c = 1; c < C; ++c)
      if (z[c] > z[arg]) arg = c;
    n += arg == labels[static_cast<std::size_t>(b)] ? 1 : 0;
  }
  return n;
}

}  // namespace

double softmax_cross_entropy_forward(std::span<float> probs, std::span<const float> logits,
                                     std::span<const std::int32_t> labels,
                                     std::span<const float> mask, double denom, std::int64_t B,
                                     std::int64_t C) {
  return forward(probs, logits, labels, mask, denom, B, C);
}
double softmax_cross_entropy_forward(std::span<double> probs, std::span<const double> logits,
                                     std::span<const std::int32_t> labels,
                                     std::span<const double> mask, double denom, std::int64_t B,
                                     std::int64_t C) {
  return forward(probs, logits, labels, mask, denom, B, C);
}

void softmax_cross_entropy_backward(std::span<float> dlogits, std::span<const float> probs,
                                    std::span<const std::int32_t> labels,
                                    std::span<const float> mask, double denom, std::int64_t B,
                                    std::int64_t C) {
  backward(dlogits, probs, labels, mask, denom, B, C);
}
void softmax_cross_entropy_backward(std::span<double> dlogits, std::span<const double> probs,
                                    std::span<const std::int32_t> labels,
                                    std::span<const double> mask, double denom, std::int64_t B,
                                    std::int64_t C) {
  backward(dlogits, probs, labels, mask, denom, B, C);
}

std::int64_t count_correct(std::span<const float> logits, std::span<const std::int32_t> labels,
                           std::span<const float> mask, std::int64_t B, std::int64_t C) {
  return correct(logits, labels, mask, B, C);
}
std::int64_t count_correct(std::span<const double> logits, std::span<const std::int32_t> labels,
                           std::span<const double> mask, std::int64_t B, std::int64_t C) {
  return correct(logits, labels, mask, B, C);
}

}  // namespace datarax::nn
