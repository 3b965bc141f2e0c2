// softmax_cross_entropy op (ops/cross_entropy.h) over nn/cross_entropy.h's kernels.
#include "datarax/nn/ops/cross_entropy.h"

#include <memory>
#include <span>
#include <vector>

#include "datarax/nn/cross_entropy.h"
#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using detail::with_float;

// Inputs: logits, labels, then mask and denom where given (has_mask_, has_denom_ say which).
class SoftmaxCrossEntropy final : public FreshOp {
 public:
  SoftmaxCrossEntropy(bool has_mask, bool has_denom, std::int64_t B, std::int64_t C, DType dtype)
      : has_mask_(has_mask), has_denom_(has_denom), B_(B), C_(C), probs_(Array::empty({B, C}, dtype)),
        scratch_(Array::empty({B, C}, dtype)) {}
  std::string_view name() const override { return "softmax_cross_entropy"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      denom_ = denominator<T>(in);
      const double loss = softmax_cross_entropy_forward(probs_.data<T>(), in[0].data<T>(), in[1].data<std::int32_t>(),
                                                        mask<T>(in), denom_, B_, C_);
      out.data<T>()[0] = static_cast<T>(loss);
    });
  }

  void backward_fresh(std::span<const Array> in, const Array&, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      // The gradient of a loss whose own gradient is 1, then scaled by dout and added.
      std::span<T> g = scratch_.data<T>();
      softmax_cross_entropy_backward(g, probs_.data<T>(), in[1].data<std::int32_t>(), mask<T>(in), denom_, B_, C_);
      const T scale = dout.data<T>()[0];
      T* dl = din[0]->data<T>().data();
      detail::store(fresh[0], [&]<bool kWrite>() {
        for (std::size_t i = 0; i < g.size(); ++i) detail::put<kWrite>(dl[i], scale * g[i]);
      });
    });
  }

 private:
  template <class T>
  std::span<const T> mask(std::span<const Array> in) const {
    return has_mask_ ? in[2].data<T>() : std::span<const T>{};
  }
  template <class T>
  double denominator(std::span<const Array> in) const {
    if (has_denom_) return static_cast<double>(in[has_mask_ ? 3 : 2].data<T>()[0]);
    if (!has_mask_) return B_ > 0 ? static_cast<double>(B_) : 1.0;
    double total = 0;
    for (T w : in[2].data<T>()) total += static_cast<double>(w);
    return total != 0 ? total : 1.0;
  }

  bool has_mask_, has_denom_;
  std::int64_t B_, C_;
  Array probs_, scratch_;
  double denom_ = 1;
};

// [..., C] -> (examples, C), checking labels (and mask) have logits' leading shape.
void check_labels(std::string_view what, Var logits, Var labels, const std::optional<Var>& mask) {
  if (logits.rank() < 1) detail::fail(what, "logits are a scalar; they need a class dimension [..., C]");
  if (!labels.valid()) detail::fail(what, "labels is an empty Var");
  if (&labels.graph() != &logits.graph()) detail::fail(what, "labels belong to another graph");
  if (labels.dtype() != DType::i32)
    throw DTypeError(std::string(what) + ": labels have dtype " + std::string(to_string(labels.dtype())) +
                     "; valid: i32");
  const std::vector<std::int64_t>& d = logits.shape().dims();
  const Shape lead(std::vector<std::int64_t>(d.begin(), d.end() - 1));
  if (labels.shape() != lead)
    detail::fail(what, "labels have shape " + labels.shape().to_string() + "; logits " + logits.shape().to_string() +
                           " need labels of shape " + lead.to_string());
  if (mask && mask->valid() && mask->shape() != lead)
    detail::fail(what, "the mask has shape " + mask->shape().to_string() + "; expected " + lead.to_string());
}

}  // namespace

Var softmax_cross_entropy(Var logits, Var labels, std::optional<Var> mask, std::optional<Var> denom) {
  constexpr std::string_view what = "softmax_cross_entropy";
  Graph& g = check_operands(what, {logits});
  check_labels(what, logits, labels, mask);
  std::vector<Var> inputs{logits, labels};
  // The loss is differentiated w.r.t. the logits only: a mask or denominator computed from the
  // parameters would silently lose its share of the gradient, so it is refused.
  for (const auto& [name, v] : {std::pair{"mask", &mask}, std::pair{"denom", &denom}})
    if (*v && v->has_value() && (*v)->valid() && g.needs_grad(**v))
      detail::fail(what, std::string("the ") + name + " depends on a parameter; it takes no gradient here, so it must "
                                                      "be data (an input of the batch, or computed from inputs only)");
  if (mask) {
    check_operands(what, {logits, *mask});
    inputs.push_back(*mask);
  }
  if (denom) {
    check_operands(what, {logits, *denom});
    if (denom->shape().numel() != 1)
      detail::fail(what, "denom has shape " + denom->shape().to_string() + "; it needs one element");
    inputs.push_back(*denom);
  }
  const std::int64_t C = logits.shape()[logits.rank() - 1];
  const std::int64_t B = C > 0 ? logits.shape().numel() / C : 0;
  auto op = std::make_unique<SoftmaxCrossEntropy>(mask.has_value(), denom.has_value(), B, C, logits.dtype());
  return g.apply(std::move(op), inputs, Shape{}, logits.dtype());
}

std::int64_t count_correct(Var logits, Var labels, std::optional<Var> mask) {
  constexpr std::string_view what = "count_correct";
  check_operands(what, {logits});
  check_labels(what, logits, labels, mask);
  const std::int64_t C = logits.shape()[logits.rank() - 1];
  const std::int64_t B = C > 0 ? logits.shape().numel() / C : 0;
  return with_float(logits.dtype(), what, [&]<class T>(T) {
    return nn::count_correct(logits.value().data<T>(), labels.value().data<std::int32_t>(),
                             mask ? mask->value().data<T>() : std::span<const T>{}, B, C);
  });
}

}  // namespace datarax::nn
