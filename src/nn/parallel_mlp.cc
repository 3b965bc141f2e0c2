// ParallelMlp: forward and backward layer by layer on this device's parts of the layers.
//
// Buffers, for batches of up to `cap` rows, allocated once (widths are this device's: a column
// layer's output and a row layer's input are 1/M of the model's):
//   z[l]   [cap, out_local(l)]  layer l's linear output (the logits for the last layer)
//   h[l]   [cap, out_local(l)]  activation(z[l]), the input of layer l+1 (hidden layers only)
//   probs  [cap, C]             softmax of the logits, then d loss / d logits
//   d0, d1 [cap, max in_local]  d loss / d (a layer's input), ping-pong between layers
#include "datarax/nn/parallel_mlp.h"

#include <algorithm>
#include <type_traits>

#include "datarax/nn/activation.h"
#include "datarax/nn/blas.h"
#include "datarax/nn/cross_entropy.h"
#include "datarax/nn/linear.h"
#include "datarax/nn/parallel_linear.h"

namespace datarax::nn {

std::string_view to_string(LayerSplit split) {
  switch (split) {
    case LayerSplit::none: return "none";
    case LayerSplit::column: return "column";
    case LayerSplit::row: return "row";
  }
  return "invalid";
}

std::vector<LayerSplit> megatron_splits(int layers, int model_size) {
  std::vector<LayerSplit> out(static_cast<std::size_t>(std::max(layers, 0)), LayerSplit::none);
  if (model_size <= 1) return out;
  for (int l = 0; l + 1 < layers; l += 2) {
    out[static_cast<std::size_t>(l)] = LayerSplit::column;
    out[static_cast<std::size_t>(l + 1)] = LayerSplit::row;
  }
  return out;
}

ShardingRules tensor_parallel_rules(const MlpConfig& config, int model_size, const std::string& axis) {
  ShardingRules rules;
  const std::vector<LayerSplit> splits = megatron_splits(static_cast<int>(config.sizes.size()) - 1, model_size);
  for (std::size_t l = 0; l < splits.size(); ++l) {
    const std::string prefix = "dense_" + std::to_string(l);
    if (splits[l] == LayerSplit::column) {
      rules.add(prefix + "/kernel", PartitionSpec{std::nullopt, axis});
      rules.add(prefix + "/bias", PartitionSpec{axis});
    } else if (splits[l] == LayerSplit::row) {
      rules.add(prefix + "/kernel", PartitionSpec{axis});
    }
  }
  return rules;
}

void ParallelMlpConfig::validate(std::string_view op) const {
  nn::validate(mlp, op);
  require_supported(precision, op);
  const int layers = static_cast<int>(mlp.sizes.size()) - 1;
  auto bad = [&](const std::string& what) { throw InvalidArgumentError(std::string(op) + ": " + what); };
  if (static_cast<int>(splits.size()) != layers)
    bad(std::to_string(splits.size()) + " splits for " + std::to_string(layers) + " layers; give one per layer");
  if (model_size < 1) bad("model_size " + std::to_string(model_size) + " must be >= 1");
  for (int l = 0; l < layers; ++l) {
    const LayerSplit s = splits[static_cast<std::size_t>(l)];
    const std::string layer = "layer " + std::to_string(l) + " (" + std::to_string(mlp.sizes[static_cast<std::size_t>(l)]) +
                              " -> " + std::to_string(mlp.sizes[static_cast<std::size_t>(l + 1)]) + ")";
    if (s != LayerSplit::none && model_size == 1) bad(layer + " is split " + std::string(to_string(s)) + " over a model axis of 1 device");
    if (s == LayerSplit::column) {
      if (l + 1 == layers || splits[static_cast<std::size_t>(l + 1)] != LayerSplit::row)
        bad(layer + " is column-parallel but the next layer is not row-parallel; columns must be summed back by a row layer");
      if (mlp.sizes[static_cast<std::size_t>(l + 1)] % model_size != 0)
        bad(layer + ": width " + std::to_string(mlp.sizes[static_cast<std::size_t>(l + 1)]) +
            " is not divisible by the model axis of " + std::to_string(model_size) + " devices");
    }
    if (s == LayerSplit::row && (l == 0 || splits[static_cast<std::size_t>(l - 1)] != LayerSplit::column))
      bad(layer + " is row-parallel but does not follow a column-parallel layer");
  }
}

std::int64_t ParallelMlpConfig::kernel_rows(int l) const {
  const std::int64_t in = mlp.sizes[static_cast<std::size_t>(l)];
  return splits[static_cast<std::size_t>(l)] == LayerSplit::row ? in / model_size : in;
}
std::int64_t ParallelMlpConfig::kernel_cols(int l) const {
  const std::int64_t out = mlp.sizes[static_cast<std::size_t>(l + 1)];
  return splits[static_cast<std::size_t>(l)] == LayerSplit::column ? out / model_size : out;
}
std::int64_t ParallelMlpConfig::bias_size(int l) const { return kernel_cols(l); }

template <class T>
class ParallelMlp<T>::Impl {
 public:
  Impl(ParallelMlpConfig config, std::int64_t max_batch) : c_(std::move(config)), cap_(max_batch) {
    c_.validate("ParallelMlp");
    if (!std::is_same_v<T, float> && c_.precision != Precision::f32)
      throw InvalidArgumentError("ParallelMlp<double>: precision " + std::string(to_string(c_.precision)) +
                                 " is for float models; valid: f32");
    if (max_batch < 1) throw InvalidArgumentError("ParallelMlp: max_batch = " + std::to_string(max_batch) + " must be >= 1");
    layers_ = static_cast<int>(c_.mlp.sizes.size()) - 1;
    std::int64_t dwidth = 0;
    std::size_t at = 0;
    auto take = [&](std::int64_t width) {
      const std::size_t off = at;
      at += static_cast<std::size_t>(cap_ * width);
      return off;
    };
    for (int l = 0; l < layers_; ++l) {
      z_.push_back(take(c_.kernel_cols(l)));
      h_.push_back(l + 1 < layers_ ? take(c_.kernel_cols(l)) : 0);
      if (l > 0) dwidth = std::max(dwidth, c_.kernel_rows(l));
    }
    probs_ = take(c_.mlp.sizes.back());
    d_[0] = take(dwidth);
    d_[1] = take(dwidth);
    arena_.assign(at, T(0));
    use_single_threaded_blas_by_default();
  }

  double loss_and_grad(LayerParams<T>& params, const Array& inputs, const Array& labels, const Array& mask,
                       double denom, std::int64_t* correct) {
    const std::int64_t B = check_rows("ParallelMlp::loss_and_grad", inputs, labels, &mask, cap_);
    const MatmulPrecisionScope precision(c_.precision);
    const std::int64_t C = c_.mlp.sizes.back();
    const std::span<const std::int32_t> y = labels.data<std::int32_t>();
    const std::span<const T> m = mask.data<T>();
    std::span<T> logits = buffer(z_.back(), B, C);
    forward(params, B, inputs.data<T>(), logits);
    std::span<T> probs = buffer(probs_, B, C);
    mark(timer_, Phase::loss);
    const double loss = softmax_cross_entropy_forward(probs, cspan(logits), y, m, denom, B, C);
    if (correct) *correct = count_correct(cspan(logits), y, m, B, C);
    softmax_cross_entropy_backward(probs, cspan(probs), y, m, denom, B, C);
    backward(params, B, inputs.data<T>(), probs);
    return loss;
  }

  EvalResult evaluate(LayerParams<T>& params, const Array& inputs, const Array& labels) {
    const std::int64_t N = check_rows("ParallelMlp::evaluate", inputs, labels, nullptr, -1);
    const MatmulPrecisionScope precision(c_.precision);
    const std::int64_t in = c_.mlp.sizes.front(), C = c_.mlp.sizes.back();
    const std::span<const T> x = inputs.data<T>();
    const std::span<const std::int32_t> y = labels.data<std::int32_t>();
    EvalResult r;
    for (std::int64_t start = 0; start < N; start += cap_) {
      const std::int64_t B = std::min(cap_, N - start);
      const std::span<const std::int32_t> yb = y.subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(B));
      std::span<T> logits = buffer(z_.back(), B, C);
      forward(params, B, x.subspan(static_cast<std::size_t>(start * in), static_cast<std::size_t>(B * in)), logits);
      r.loss_sum += softmax_cross_entropy_forward(buffer(probs_, B, C), cspan(logits), yb, {}, 1.0, B, C);
      r.correct += count_correct(cspan(logits), yb, {}, B, C);
      r.count += B;
    }
    return r;
  }

  ParallelMlpConfig c_;
  PhaseTimer* timer_ = nullptr;

 private:
  std::span<T> buffer(std::size_t offset, std::int64_t rows, std::int64_t cols) {
    return {arena_.data() + offset, static_cast<std::size_t>(rows * cols)};
  }
  static std::span<const T> cspan(std::span<T> s) { return s; }

  // logits [B, C] of x [B, sizes[0]]; the hidden activations stay in z / h for backward.
  void forward(LayerParams<T>& params, std::int64_t B, std::span<const T> x, std::span<T> logits) {
    for (int l = 0; l < layers_; ++l) {
      const std::int64_t rows = c_.kernel_rows(l), cols = c_.kernel_cols(l);
      const bool last = l + 1 == layers_;
      std::span<T> z = last ? logits : buffer(z_[static_cast<std::size_t>(l)], B, cols);
      mark(timer_, Phase::collectives);  // FSDP gathers the layer here
      const auto w = params.acquire(l, false);
      mark(timer_, Phase::forward_gemm);
      if (c_.splits[static_cast<std::size_t>(l)] == LayerSplit::row)
        row_parallel_linear_forward(z, x, w.kernel, w.bias, B, rows, cols, c_.model_axis);
      else  // a column layer's forward is a plain linear one on its columns (Megatron's f: identity)
        linear_forward(z, x, w.kernel, w.bias, B, rows, cols);
      params.release(l);
      if (last) break;
      std::span<T> h = buffer(h_[static_cast<std::size_t>(l)], B, cols);
      mark(timer_, Phase::forward_elementwise);
      activation_forward(c_.mlp.activation, h, cspan(z));
      x = h;
    }
  }

  // From dz = d loss / d logits, last layer first; gradients to params.gradients(l).
  void backward(LayerParams<T>& params, std::int64_t B, std::span<const T> inputs, std::span<T> dz) {
    for (int l = layers_ - 1; l >= 0; --l) {
      const std::int64_t rows = c_.kernel_rows(l), cols = c_.kernel_cols(l);
      const std::span<const T> x = l == 0 ? inputs : cspan(buffer(h_[static_cast<std::size_t>(l - 1)], B, rows));
      std::span<T> dx = l == 0 ? std::span<T>() : buffer(d_[l % 2], B, rows);
      // Layer 0 computes no input gradient, so its weights are not needed (nor gathered).
      mark(timer_, Phase::collectives);  // FSDP gathers the layer again here
      const auto w = l == 0 ? typename LayerParams<T>::Weights{} : params.acquire(l, true);
      const auto g = params.gradients(l);
      mark(timer_, Phase::backward_elementwise);
      std::fill(g.kernel.begin(), g.kernel.end(), T(0));  // the layer functions accumulate
      std::fill(g.bias.begin(), g.bias.end(), T(0));
      mark(timer_, Phase::backward_gemm);
      if (c_.splits[static_cast<std::size_t>(l)] == LayerSplit::column)
        column_parallel_linear_backward(dx, g.kernel, g.bias, cspan(dz), x, w.kernel, B, rows, cols, c_.model_axis);
      else  // a row layer's backward is a plain linear one on its rows (Megatron's g: identity)
        linear_backward(dx, g.kernel, g.bias, cspan(dz), x, w.kernel, B, rows, cols);
      mark(timer_, Phase::collectives);  // ZeRO-2/3 reduce-scatter the layer's gradients here
      params.gradients_done(l);
      if (l > 0) params.release(l);
      if (l == 0) break;
      mark(timer_, Phase::backward_elementwise);
      activation_backward(c_.mlp.activation, dx, cspan(dx), cspan(buffer(z_[static_cast<std::size_t>(l - 1)], B, rows)));
      dz = dx;
    }
  }

  std::int64_t check_rows(const char* op, const Array& inputs, const Array& labels, const Array* mask,
                          std::int64_t limit) const {
    const std::int64_t in = c_.mlp.sizes.front();
    if (inputs.dtype() != dtype_v<T> || inputs.rank() < 1 || inputs.shape().row_numel() != in)
      throw InvalidArgumentError(std::string(op) + ": inputs is " + std::string(to_string(inputs.dtype())) +
                                 inputs.shape().to_string() + "; expected " + std::string(to_string(dtype_v<T>)) +
                                 "[B, " + std::to_string(in) + "]");
    const std::int64_t B = inputs.shape()[0];
    if (limit >= 0 && B > limit)
      throw InvalidArgumentError(std::string(op) + ": a batch of " + std::to_string(B) + " rows is out of range (0.." +
                                 std::to_string(limit) + ")");
    if (labels.dtype() != DType::i32 || labels.rank() != 1 || labels.shape()[0] != B)
      throw InvalidArgumentError(std::string(op) + ": labels is " + std::string(to_string(labels.dtype())) +
                                 labels.shape().to_string() + "; expected i32[" + std::to_string(B) + "]");
    if (mask && (mask->dtype() != dtype_v<T> || mask->rank() != 1 || mask->shape()[0] != B))
      throw InvalidArgumentError(std::string(op) + ": mask is " + std::string(to_string(mask->dtype())) +
                                 mask->shape().to_string() + "; expected one weight per row");
    return B;
  }

  std::int64_t cap_;
  int layers_ = 0;
  std::vector<std::size_t> z_, h_;
  std::size_t probs_ = 0;
  std::size_t d_[2] = {0, 0};
  std::vector<T> arena_;
};

template <class T>
ParallelMlp<T>::ParallelMlp(ParallelMlpConfig config, std::int64_t max_batch)
    : impl_(std::make_unique<Impl>(std::move(config), max_batch)) {}
template <class T>
ParallelMlp<T>::~ParallelMlp() = default;
template <class T>
ParallelMlp<T>::ParallelMlp(ParallelMlp&&) noexcept = default;
template <class T>
ParallelMlp<T>& ParallelMlp<T>::operator=(ParallelMlp&&) noexcept = default;
template <class T>
const ParallelMlpConfig& ParallelMlp<T>::config() const {
  return impl_->c_;
}
template <class T>
void ParallelMlp<T>::set_phase_timer(PhaseTimer* timer) {
  impl_->timer_ = timer;
}
template <class T>
double ParallelMlp<T>::loss_and_grad(LayerParams<T>& params, const Array& inputs, const Array& labels,
                                     const Array& mask, double denom, std::int64_t* correct) {
  return impl_->loss_and_grad(params, inputs, labels, mask, denom, correct);
}
template <class T>
EvalResult ParallelMlp<T>::evaluate(LayerParams<T>& params, const Array& inputs, const Array& labels) {
  return impl_->evaluate(params, inputs, labels);
}

template class ParallelMlp<float>;
template class ParallelMlp<double>;

}  // namespace datarax::nn
