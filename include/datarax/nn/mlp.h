// A multi-layer perceptron classifier: its configuration, a seeded initializer, and Mlp, which
// owns the activation and gradient buffers and computes the loss, its gradient and evaluations.
//
// Parameters live in a Tree, one pair of leaves per layer i (0-based, input layer first):
//   dense_{i}/kernel  [sizes[i], sizes[i+1]]   (row-major: in × out, so out = inp · kernel + bias)
//   dense_{i}/bias    [sizes[i+1]]
// Every hidden layer is followed by the activation; the last layer gives the logits, and the loss
// is nn::softmax_cross_entropy (see cross_entropy.h for the mask and the denominator).
//
// Threads: an Mlp is one device's workspace; it is not safe to call one Mlp from two threads at
// once, but any number of Mlps may run concurrently, sharing one params Tree read-only. The first
// Mlp constructed puts OpenBLAS in single-threaded mode for the process (see nn/blas.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "datarax/array.h"
#include "datarax/dtype.h"
#include "datarax/nn/activation.h"
#include "datarax/tree.h"

namespace datarax::nn {

struct MlpConfig {
  std::vector<int> sizes{};  // layer widths, input first, classes last: {784, 512, 512, 10}
  Activation activation = Activation::relu;  // after every layer but the last
};

// At least two sizes, each >= 1; InvalidArgumentError naming `op` and the bad value otherwise.
void validate(const MlpConfig& config, std::string_view op = "MlpConfig");

// The number of parameters: Σ_i sizes[i] · sizes[i+1] + sizes[i+1].
std::int64_t num_params(const MlpConfig& config);

// f32 parameters for `config`, a pure function of (config, seed): the same on every device,
// process and platform, whatever the device count.
//   Biases are 0.
//   Kernels are He-uniform (variance 2 / fan_in): kernel_i[j] = (2u − 1) · √(6 / sizes[i]), where
//   j is the row-major index of the element and u ∈ [0, 1) is a counter-based splitmix64 draw:
//     mix(z)      = the splitmix64 finalizer (z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
//                   z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31)
//     at(key, n)  = mix(key + (n + 1) · 0x9E3779B97F4A7C15)     (the n-th splitmix64 output)
//     u           = (at(at(seed, i), j) >> 11) · 2⁻⁵³            (computed in double, then
//                                                                the weight rounded to float)
//   Counter-based, so any element can be drawn alone (a shard can initialize just its block).
//   std:: distributions are avoided on purpose: their algorithms are implementation-defined.
Tree mlp_init(const MlpConfig& config, std::uint64_t seed);

// Totals over a data set: loss_sum = Σ mask · (−log p(label)), correct and count over the
// examples with mask != 0. Totals (not means) so that devices can add theirs before dividing.
struct EvalResult {
  double loss_sum = 0;
  std::int64_t correct = 0;
  std::int64_t count = 0;

  double mean_loss() const { return count > 0 ? loss_sum / static_cast<double>(count) : 0.0; }
  double accuracy() const {
    return count > 0 ? static_cast<double>(correct) / static_cast<double>(count) : 0.0;
  }
};

class Mlp {
 public:
  // Allocates every buffer for batches of up to max_batch rows (>= 1), in `dtype` (f32, or f64
  // for gradient checks); a larger batch is an error, not a reallocation. After this, no call
  // allocates, except loss_and_grad when its grads Tree lacks a leaf (or has one of the wrong
  // shape or dtype: the first call with an empty Tree) and logits when `out` must be replaced.
  Mlp(MlpConfig config, std::int64_t max_batch, DType dtype = DType::f32);
  ~Mlp();
  Mlp(Mlp&&) noexcept;
  Mlp& operator=(Mlp&&) noexcept;

  const MlpConfig& config() const;
  std::int64_t max_batch() const;
  DType dtype() const;

  // Forward and backward on one batch of B <= max_batch rows:
  //   params  the Tree above, leaves in dtype()   (a Tree with more leaves is fine)
  //   inputs  [B, sizes[0]] in dtype() (or [B, ...] with sizes[0] elements per row)
  //   labels  i32 [B];  mask  dtype() [B];  denom > 0 (see cross_entropy.h)
  //   grads   OVERWRITTEN with d loss / d params, same keys as the parameters. Leaves it already
  //           has with the right shape and dtype are written in place (so they may be views into
  //           one flat buffer, for a bucketed all-reduce); missing ones are allocated.
  //   correct if not null, set to count_correct on the batch.
  // Returns the loss.
  double loss_and_grad(const Tree& params, const Array& inputs, const Array& labels,
                       const Array& mask, double denom, Tree& grads,
                       std::int64_t* correct = nullptr);

  // The logits [B, sizes.back()] of inputs [B, sizes[0]] (B <= max_batch), written into out,
  // which is reused if it has that shape and dtype() and replaced by a new Array otherwise.
  void logits(const Tree& params, const Array& inputs, Array& out);

  // Loss and accuracy over any number of rows, max_batch at a time. Without a mask every row
  // counts; with one (dtype() [N]) rows whose mask is 0 do not.
  EvalResult evaluate(const Tree& params, const Array& inputs, const Array& labels);
  EvalResult evaluate(const Tree& params, const Array& inputs, const Array& labels,
                      const Array& mask);

  // The workspace (activations and their gradients): fixed at construction. For tests.
  const void* workspace_data() const;
  std::size_t workspace_bytes() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace datarax::nn
