// dropout op (ops/dropout.h).
#include "datarax/nn/ops/dropout.h"

#include <cmath>
#include <memory>
#include <string>

#include "core/splitmix64.h"
#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using datarax::detail::SplitMix64;
using detail::with_float;

// An element is dropped when the top 53 bits of its draw, as a fraction of 2^53, are < rate
// (for an integer x, x < rate · 2^53 exactly when x < ⌈rate · 2^53⌉).
std::uint64_t threshold(double rate) { return static_cast<std::uint64_t>(std::ceil(std::ldexp(rate, 53))); }

// The key of one example's stream: the seed, then the step, then the global example index.
std::uint64_t example_key(std::uint64_t seed, std::uint64_t step, std::uint64_t example) {
  return SplitMix64::at(SplitMix64::at(seed, step), example);
}

class Dropout final : public Op {
 public:
  Dropout(double rate, std::uint64_t seed, std::int64_t B, std::int64_t per_example)
      : rate_(rate), seed_(seed), threshold_(threshold(rate)), B_(B), E_(per_example) {}
  std::string_view name() const override { return "dropout"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) { apply(in, in[0].data<T>().data(), out.data<T>().data(), false); });
  }
  void backward(std::span<const Array> in, const Array&, const Array& dout, std::span<Array* const> din) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) { apply(in, dout.data<T>().data(), din[0]->data<T>().data(), true); });
  }

 private:
  // dst (+)= src · mask / (1 − rate): forward writes, backward adds (the mask is its own Jacobian).
  template <class T>
  void apply(std::span<const Array> in, const T* src, T* dst, bool accumulate) const {
    const std::uint64_t step = counter(in[1], "step");
    const std::uint64_t first = counter(in[2], "first_example");
    const T keep_scale = static_cast<T>(1.0 / (1.0 - rate_));
    for (std::int64_t b = 0; b < B_; ++b) {
      const std::uint64_t key = example_key(seed_, step, first + static_cast<std::uint64_t>(b));
      const T* s = src + b * E_;
      T* d = dst + b * E_;
      for (std::int64_t e = 0; e < E_; ++e) {
        const T m = (SplitMix64::at(key, static_cast<std::uint64_t>(e)) >> 11) < threshold_ ? T(0) : keep_scale;
        if (accumulate)
          d[e] += s[e] * m;
        else
          d[e] = s[e] * m;
      }
    }
  }

  std::uint64_t counter(const Array& a, const char* what) const {
    const std::int64_t v = a.dtype() == DType::i64 ? a.data<std::int64_t>()[0] : a.data<std::int32_t>()[0];
    if (v < 0) detail::fail(name(), std::string(what) + " is " + std::to_string(v) + "; valid: >= 0");
    return static_cast<std::uint64_t>(v);
  }

  double rate_;
  std::uint64_t seed_, threshold_;
  std::int64_t B_, E_;  // examples, elements per example
};

void check_counter(Graph& g, Var v, const char* what) {
  if (!v.valid()) detail::fail("dropout", std::string(what) + " is an empty Var (default-constructed)");
  if (&v.graph() != &g) detail::fail("dropout", std::string(what) + " belongs to another graph");
  if (v.dtype() != DType::i32 && v.dtype() != DType::i64)
    throw DTypeError("dropout: " + std::string(what) + " has dtype " + std::string(to_string(v.dtype())) +
                     "; valid: i32, i64");
  if (v.shape().numel() != 1)
    detail::fail("dropout", std::string(what) + " has shape " + v.shape().to_string() + "; it needs one element");
}

}  // namespace

bool dropout_keeps(double rate, std::uint64_t seed, std::uint64_t step, std::uint64_t example, std::uint64_t element) {
  return (SplitMix64::at(example_key(seed, step, example), element) >> 11) >= threshold(rate);
}

Var dropout(Var x, double rate, std::uint64_t seed, Var step, Var first_example) {
  constexpr std::string_view what = "dropout";
  Graph& g = check_operands(what, {x});
  if (!(rate >= 0 && rate < 1)) detail::fail(what, "rate " + std::to_string(rate) + "; valid: 0 <= rate < 1");
  if (x.rank() < 1) detail::fail(what, "the input is a scalar; it needs a leading example dimension [B, ...]");
  check_counter(g, step, "step");
  check_counter(g, first_example, "first_example");
  if (rate == 0) return x;
  const std::int64_t B = x.shape()[0];
  const std::int64_t per_example = x.shape().row_numel();
  return g.apply(std::make_unique<Dropout>(rate, seed, B, per_example), {x, step, first_example}, x.shape(),
                 x.dtype());
}

}  // namespace datarax::nn
