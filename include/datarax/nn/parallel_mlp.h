// ParallelMlp: one device's part of an MLP (mlp.h's model) whose layers may be tensor-parallel
// over a mesh axis and whose parameters may live elsewhere until needed — the model of
// datarax-train on any data x model mesh, run inside SPMD.
//
// Tensor parallelism (parallel_linear.h) follows Megatron's MLP recipe: layers pair up, the first
// of a pair column-parallel (its output columns split over the M devices of the axis) and the
// second row-parallel (its input rows split, its output summed back whole); an odd last layer —
// the classifier of the default MLP 784-512-512-10 — stays whole on every device: its 10 outputs
// would not split over M = 4, and at 0.8% of the parameters it is not worth padding. The pairs
// cost one all-reduce of activations each in forward and one of the input gradient in backward,
// but the first pair's (its input is the data): for the default model, one all-reduce per step in
// all, of [batch, 512] floats.
//
// Where the parameters are is the caller's: a LayerParams gives each layer's (this device's part
// of the) kernel and bias just before the layer runs, in forward and again in backward, and takes
// its gradients right after — which is how FSDP gathers a layer only while it runs and
// reduce-scatters its gradients at once (train/step). Gradients are overwritten, not accumulated.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "datarax/array.h"
#include "datarax/nn/mlp.h"
#include "datarax/nn/precision.h"
#include "datarax/phase_timer.h"
#include "datarax/sharding_rules.h"

namespace datarax::nn {

// How a layer's weight is split over the model axis.
enum class LayerSplit : unsigned char { none, column, row };
std::string_view to_string(LayerSplit split);  // "none", "column", "row"

// Megatron's alternation for `layers` layers over a model axis of `model_size` devices: column,
// row, column, row, ..., and none for an odd last layer; none everywhere when model_size is 1.
std::vector<LayerSplit> megatron_splits(int layers, int model_size);

// The sharding rules of an MLP's parameters ("dense_<i>/kernel", "dense_<i>/bias") for those
// splits over `axis`: a column layer's kernel [in, out] as PartitionSpec(None, axis) and bias as
// PartitionSpec(axis), a row layer's kernel as PartitionSpec(axis) and its bias replicated, an
// unsplit layer replicated.
ShardingRules tensor_parallel_rules(const MlpConfig& config, int model_size, const std::string& axis = "model");

struct ParallelMlpConfig {
  MlpConfig mlp;                  // the whole model
  std::vector<LayerSplit> splits;  // one per layer (megatron_splits)
  std::string model_axis = "model";
  int model_size = 1;             // M, the size of model_axis
  // The matrix products' precision (datarax/nn/precision.h) for a float model: bf16 rounds their
  // operands to bfloat16 and sums in f32; everything else stays f32. A double model takes f32 only.
  Precision precision = Precision::f32;

  // Splits that fit: one per layer, none anywhere when M = 1, a row layer right after each column
  // one, every split width divisible by M. InvalidArgumentError naming `op`, the layer, its width
  // and M otherwise; UnsupportedError for a precision this CPU lacks.
  void validate(std::string_view op = "ParallelMlpConfig") const;
  // This device's kernel [rows, cols] and bias [len] of layer l.
  std::int64_t kernel_rows(int l) const;
  std::int64_t kernel_cols(int l) const;
  std::int64_t bias_size(int l) const;
};

// Where a ParallelMlp gets each layer's parameters and puts their gradients.
template <class T>
class LayerParams {
 public:
  struct Weights {
    std::span<const T> kernel, bias;  // this device's part: [kernel_rows, kernel_cols], [bias_size]
  };
  struct Gradients {
    std::span<T> kernel, bias;  // written (overwritten) by the layer's backward
  };
  virtual ~LayerParams() = default;
  // Layer l is about to run (forward, or backward when `backward`); its weights stay valid until
  // release(l). The first layer's backward needs no weights (there is no input gradient to
  // compute), so it is never acquired for backward: layers L-1 .. 1 are, in that order.
  virtual Weights acquire(int l, bool backward) = 0;
  virtual void release(int l) = 0;
  // Where layer l's gradients go; gradients_done(l) once they are written.
  virtual Gradients gradients(int l) = 0;
  virtual void gradients_done(int l) = 0;
};

template <class T>
class ParallelMlp {
 public:
  // Buffers for batches of up to max_batch rows, allocated here once.
  ParallelMlp(ParallelMlpConfig config, std::int64_t max_batch);
  ~ParallelMlp();
  ParallelMlp(ParallelMlp&&) noexcept;
  ParallelMlp& operator=(ParallelMlp&&) noexcept;

  const ParallelMlpConfig& config() const;
  // Marks forward, loss and backward phases on `timer` from now on (null: none, the default).
  // Tensor parallelism's all-reduces inside a layer count with the layer's matrix products.
  void set_phase_timer(PhaseTimer* timer);

  // Forward and backward of one batch of B <= max_batch rows, as Mlp::loss_and_grad (inputs [B,
  // sizes[0]] in T, labels i32 [B], mask T [B], denom > 0), the same on every device of the model
  // axis. Collective over the model axis when a layer is split. Returns the loss.
  double loss_and_grad(LayerParams<T>& params, const Array& inputs, const Array& labels, const Array& mask,
                       double denom, std::int64_t* correct = nullptr);
  // Loss and accuracy totals over any number of rows, max_batch at a time (forward only).
  EvalResult evaluate(LayerParams<T>& params, const Array& inputs, const Array& labels);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

extern template class ParallelMlp<float>;
extern template class ParallelMlp<double>;

}  // namespace datarax::nn
