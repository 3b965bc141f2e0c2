// Mlp: the forward / backward of a stack of linear layers on preallocated buffers.
//
// Buffers, for batches of up to `cap` rows, in one arena allocated at construction:
//   z[l]    [cap, sizes[l+1]]   layer l's linear output (the logits for the last layer)
//   h[l]    [cap, sizes[l+1]]   activation(z[l]), the input of layer l+1   (hidden layers only)
//   probs   [cap, C]            softmax of the logits, then (in place) d loss / d logits
//   d0, d1  [cap, max hidden]   d loss / d (a hidden layer's output), ping-pong between layers;
//                               the activation backward runs in place on them
#include "datarax/nn/mlp.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>

#include "datarax/nn/blas.h"
#include "datarax/nn/cross_entropy.h"
#include "datarax/nn/linear.h"

namespace datarax::nn {

class Mlp::Impl {
 public:
  Impl(MlpConfig config, std::int64_t max_batch, DType dtype)
      : config_(std::move(config)), max_batch_(max_batch), dtype_(dtype) {}
  virtual ~Impl() = default;

  virtual double loss_and_grad(const Tree& params, const Array& inputs, const Array& labels,
                               const Array& mask, double denom, Tree& grads,
                               std::int64_t* correct) = 0;
  virtual void logits(const Tree& params, const Array& inputs, Array& out) = 0;
  virtual EvalResult evaluate(const Tree& params, const Array& inputs, const Array& labels,
                              const Array* mask) = 0;
  virtual const void* workspace_data() const = 0;
  virtual std::size_t workspace_bytes() const = 0;

  MlpConfig config_;
  std::int64_t max_batch_;
  DType dtype_;
};

namespace {

std::string shape_string(std::int64_t a, std::int64_t b = -1) {
  return "[" + std::to_string(a) + (b >= 0 ? ", " + std::to_string(b) : std::string()) + "]";
}

bool has_shape(const Array& a, std::int64_t d0) { return a.rank() == 1 && a.shape()[0] == d0; }
bool has_shape(const Array& a, std::int64_t d0, std::int64_t d1) {
  return a.rank() == 2 && a.shape()[0] == d0 && a.shape()[1] == d1;
}

template <class T>
class MlpImpl final : public Mlp::Impl {
 public:
  MlpImpl(MlpConfig config, std::int64_t max_batch)
      : Impl(std::move(config), max_batch, dtype_v<T>) {
    const std::vector<int>& s = config_.sizes;
    layers_ = static_cast<int>(s.size()) - 1;
    std::int64_t hidden = 0;
    for (int l = 0; l + 1 < layers_; ++l) hidden = std::max<std::int64_t>(hidden, s[l + 1]);
    // Offsets into the arena, in elements.
    std::size_t at = 0;
    const auto take = [&](std::int64_t width) {
      const std::size_t off = at;
      at += static_cast<std::size_t>(max_batch_ * width);
      return off;
    };
    for (int l = 0; l < layers_; ++l) {
      const std::string prefix = "dense_" + std::to_string(l);
      kernel_keys_.push_back(prefix + "/kernel");
      bias_keys_.push_back(prefix + "/bias");
      z_.push_back(take(s[l + 1]));
      h_.push_back(l + 1 < layers_ ? take(s[l + 1]) : 0);
    }
    probs_ = take(s.back());
    d_[0] = take(hidden);
    d_[1] = take(hidden);
    arena_.assign(at, T(0));
    weights_.resize(static_cast<std::size_t>(layers_));
    dweights_.resize(static_cast<std::size_t>(layers_));
  }

  double loss_and_grad(const Tree& params, const Array& inputs, const Array& labels,
                       const Array& mask, double denom, Tree& grads,
                       std::int64_t* correct) override {
    constexpr const char* op = "Mlp::loss_and_grad";
    resolve_params(params, op);
    const std::int64_t B = check_rows(op, inputs, labels, &mask, max_batch_);
    prepare_grads(grads);
    const std::int64_t C = width(layers_);
    const std::span<const std::int32_t> y = labels.data<std::int32_t>();
    const std::span<const T> m = mask.data<T>();

    std::span<T> logits_buf = buffer(z_.back(), B, C);
    forward(B, inputs.data<T>(), logits_buf);
    std::span<T> probs = buffer(probs_, B, C);
    const double loss = softmax_cross_entropy_forward(probs, cspan(logits_buf), y, m, denom, B, C);
    if (correct) *correct = count_correct(cspan(logits_buf), y, m, B, C);

    // Backward, last layer first. dz: d loss / d (layer l's linear output).
    softmax_cross_entropy_backward(probs, cspan(probs), y, m, denom, B, C);
    std::span<T> dz = probs;
    for (int l = layers_ - 1; l >= 0; --l) {
      const std::int64_t in = width(l), out = width(l + 1);
      const std::span<const T> x = l == 0 ? inputs.data<T>() : cspan(buffer(h_[l - 1], B, in));
      std::span<T> dx = l == 0 ? std::span<T>() : buffer(d_[l % 2], B, in);
      linear_backward(dx, dweights_[l].kernel, dweights_[l].bias, cspan(dz), x, weights_[l].kernel,
                      B, in, out);
      if (l == 0) break;
      // d loss / d z[l-1] = dx · activation'(z[l-1]), in place.
      activation_backward(config_.activation, dx, cspan(dx), cspan(buffer(z_[l - 1], B, in)));
      dz = dx;
    }
    return loss;
  }

  void logits(const Tree& params, const Array& inputs, Array& out) override {
    constexpr const char* op = "Mlp::logits";
    resolve_params(params, op);
    check_inputs(op, inputs, max_batch_);
    const std::int64_t B = inputs.shape()[0];
    const std::int64_t C = width(layers_);
    if (out.dtype() != dtype_ || !has_shape(out, B, C)) out = Array::empty({B, C}, dtype_);
    forward(B, inputs.data<T>(), out.data<T>());
  }

  EvalResult evaluate(const Tree& params, const Array& inputs, const Array& labels,
                      const Array* mask) override {
    constexpr const char* op = "Mlp::evaluate";
    resolve_params(params, op);
    const std::int64_t N = check_rows(op, inputs, labels, mask, /*limit=*/-1);
    const std::int64_t in = width(0), C = width(layers_);
    const std::span<const T> x = inputs.data<T>();
    const std::span<const std::int32_t> y = labels.data<std::int32_t>();
    const std::span<const T> m = mask ? mask->data<T>() : std::span<const T>();
    EvalResult r;
    for (std::int64_t start = 0; start < N; start += max_batch_) {
      const std::int64_t B = std::min(max_batch_, N - start);
      const auto rows = [&](auto span, std::int64_t w) {
        return span.subspan(static_cast<std::size_t>(start * w), static_cast<std::size_t>(B * w));
      };
      const std::span<const std::int32_t> yb = rows(y, 1);
      const std::span<const T> mb = m.empty() ? m : rows(m, 1);
      std::span<T> logits_buf = buffer(z_.back(), B, C);
      forward(B, rows(x, in), logits_buf);
      r.loss_sum +=
          softmax_cross_entropy_forward(buffer(probs_, B, C), cspan(logits_buf), yb, mb, 1.0, B, C);
      r.correct += count_correct(cspan(logits_buf), yb, mb, B, C);
      r.count += mb.empty() ? B : std::count_if(mb.begin(), mb.end(), [](T w) { return w != T(0); });
    }
    return r;
  }

  const void* workspace_data() const override { return arena_.data(); }
  std::size_t workspace_bytes() const override { return arena_.size() * sizeof(T); }

 private:
  struct Weights {
    std::span<const T> kernel, bias;
  };
  struct Grads {
    std::span<T> kernel, bias;
  };

  std::int64_t width(int i) const { return config_.sizes[static_cast<std::size_t>(i)]; }
  std::span<T> buffer(std::size_t offset, std::int64_t rows, std::int64_t cols) {
    return {arena_.data() + offset, static_cast<std::size_t>(rows * cols)};
  }
  static std::span<const T> cspan(std::span<T> s) { return s; }

  // logits [B, C] of x [B, sizes[0]]; the hidden activations stay in z / h for backward.
  void forward(std::int64_t B, std::span<const T> x, std::span<T> logits_out) {
    for (int l = 0; l < layers_; ++l) {
      const std::int64_t in = width(l), out = width(l + 1);
      const bool last = l + 1 == layers_;
      std::span<T> z = last ? logits_out : buffer(z_[l], B, out);
      linear_forward(z, x, weights_[l].kernel, weights_[l].bias, B, in, out);
      if (last) break;
      std::span<T> h = buffer(h_[l], B, out);
      activation_forward(config_.activation, h, cspan(z));
      x = h;
    }
  }

  // Points weights_ at the parameters, checking every leaf's dtype and shape.
  void resolve_params(const Tree& params, const char* op) {
    for (int l = 0; l < layers_; ++l) {
      const std::int64_t in = width(l), out = width(l + 1);
      const Array& k = param(params, kernel_keys_[l], op, in, out);
      const Array& b = param(params, bias_keys_[l], op, out, -1);
      weights_[l] = {k.data<T>(), b.data<T>()};
    }
  }

  const Array& param(const Tree& params, const std::string& key, const char* op, std::int64_t d0,
                     std::int64_t d1) const {
    if (!params.contains(key))
      throw KeyError(std::string(op) + ": params has no \"" + key + "\"; an MLP with " +
                     std::to_string(layers_) + " layers needs dense_0 .. dense_" +
                     std::to_string(layers_ - 1) + ", each with kernel and bias (the tree has " +
                     std::to_string(params.size()) + " leaves)");
    const Array& a = params.at(key);
    const bool shape_ok = d1 < 0 ? has_shape(a, d0) : has_shape(a, d0, d1);
    if (a.dtype() != dtype_ || !shape_ok)
      throw InvalidArgumentError(std::string(op) + ": params \"" + key + "\" is " +
                                 std::string(to_string(a.dtype())) + a.shape().to_string() +
                                 "; this Mlp needs " + std::string(to_string(dtype_)) +
                                 shape_string(d0, d1));
    return a;
  }

  // Makes every gradient leaf exist with the right shape and dtype, points dweights_ at them and
  // zeroes them (linear_backward accumulates).
  void prepare_grads(Tree& grads) {
    for (int l = 0; l < layers_; ++l) {
      const std::int64_t in = width(l), out = width(l + 1);
      dweights_[l].kernel = grad_leaf(grads, kernel_keys_[l], in, out);
      dweights_[l].bias = grad_leaf(grads, bias_keys_[l], out, -1);
      std::fill(dweights_[l].kernel.begin(), dweights_[l].kernel.end(), T(0));
      std::fill(dweights_[l].bias.begin(), dweights_[l].bias.end(), T(0));
    }
  }

  std::span<T> grad_leaf(Tree& grads, const std::string& key, std::int64_t d0, std::int64_t d1) {
    if (grads.contains(key)) {
      Array& a = grads.at(key);
      const bool shape_ok = d1 < 0 ? has_shape(a, d0) : has_shape(a, d0, d1);
      if (a.dtype() == dtype_ && shape_ok) return a.data<T>();
    }
    grads.set(key, d1 < 0 ? Array::empty({d0}, dtype_) : Array::empty({d0, d1}, dtype_));
    return grads.at(key).data<T>();
  }

  void check_inputs(const char* op, const Array& inputs, std::int64_t limit) const {
    const std::int64_t in = width(0);
    if (inputs.dtype() != dtype_ || inputs.rank() < 1 || inputs.shape().row_numel() != in)
      throw InvalidArgumentError(std::string(op) + ": inputs is " +
                                 std::string(to_string(inputs.dtype())) +
                                 inputs.shape().to_string() + "; this Mlp needs " +
                                 std::string(to_string(dtype_)) + "[B, " + std::to_string(in) +
                                 "] (or [B, ...] with " + std::to_string(in) + " per row)");
    if (limit >= 0 && inputs.shape()[0] > limit)
      throw InvalidArgumentError(std::string(op) + ": a batch of " +
                                 std::to_string(inputs.shape()[0]) +
                                 " rows is out of range (0.." + std::to_string(limit) +
                                 "): the Mlp was built for max_batch " + std::to_string(limit));
  }

  // The number of rows of inputs, labels and mask, which must agree (and be <= limit if >= 0).
  std::int64_t check_rows(const char* op, const Array& inputs, const Array& labels,
                          const Array* mask, std::int64_t limit) const {
    check_inputs(op, inputs, limit);
    const std::int64_t B = inputs.shape()[0];
    if (labels.dtype() != DType::i32 || !has_shape(labels, B))
      throw InvalidArgumentError(std::string(op) + ": labels is " +
                                 std::string(to_string(labels.dtype())) +
                                 labels.shape().to_string() + "; it must be i32" +
                                 shape_string(B) + " (one per row of inputs)");
    if (mask && (mask->dtype() != dtype_ || !has_shape(*mask, B)))
      throw InvalidArgumentError(std::string(op) + ": mask is " +
                                 std::string(to_string(mask->dtype())) +
                                 mask->shape().to_string() + "; it must be " +
                                 std::string(to_string(dtype_)) + shape_string(B) +
                                 " (one weight per row of inputs)");
    return B;
  }

  int layers_ = 0;
  std::vector<std::string> kernel_keys_, bias_keys_;
  std::vector<std::size_t> z_, h_;
  std::size_t probs_ = 0;
  std::size_t d_[2] = {0, 0};
  std::vector<T> arena_;
  // Per call: where this call's parameters and gradients are (sized once, no allocation).
  std::vector<Weights> weights_;
  std::vector<Grads> dweights_;
};

}  // namespace

Mlp::Mlp(MlpConfig config, std::int64_t max_batch, DType dtype) {
  validate(config, "Mlp");
  if (max_batch < 1)
    throw InvalidArgumentError("Mlp: max_batch = " + std::to_string(max_batch) +
                               " must be >= 1");
  if (dtype == DType::f32)
    impl_ = std::make_unique<MlpImpl<float>>(std::move(config), max_batch);
  else if (dtype == DType::f64)
    impl_ = std::make_unique<MlpImpl<double>>(std::move(config), max_batch);
  else
    throw DTypeError("Mlp: dtype " + std::string(to_string(dtype)) + " is not supported; valid: "
                     "f32, f64");
  use_single_threaded_blas_by_default();
}

Mlp::~Mlp() = default;
Mlp::Mlp(Mlp&&) noexcept = default;
Mlp& Mlp::operator=(Mlp&&) noexcept = default;

const MlpConfig& Mlp::config() const { return impl_->config_; }
std::int64_t Mlp::max_batch() const { return impl_->max_batch_; }
DType Mlp::dtype() const { return impl_->dtype_; }

double Mlp::loss_and_grad(const Tree& params, const Array& inputs, const Array& labels,
                          const Array& mask, double denom, Tree& grads, std::int64_t* correct) {
  return impl_->loss_and_grad(params, inputs, labels, mask, denom, grads, correct);
}

void Mlp::logits(const Tree& params, const Array& inputs, Array& out) {
  impl_->logits(params, inputs, out);
}

EvalResult Mlp::evaluate(const Tree& params, const Array& inputs, const Array& labels) {
  return impl_->evaluate(params, inputs, labels, nullptr);
}

EvalResult Mlp::evaluate(const Tree& params, const Array& inputs, const Array& labels,
                         const Array& mask) {
  return impl_->evaluate(params, inputs, labels, &mask);
}

const void* Mlp::workspace_data() const { return impl_->workspace_data(); }
std::size_t Mlp::workspace_bytes() const { return impl_->workspace_bytes(); }

}  // namespace datarax::nn
