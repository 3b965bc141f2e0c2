// Conv: a 2-D convolution layer, Flax's nn.Conv on NHWC inputs: kernel [KH, KW, C_in, C_out] (HWIO,
// lecun_normal), bias [C_out] (zeros), SAME padding and stride 1 unless told otherwise; optionally
// with its ReLU and a max pool after it fused in (Keras's Conv2D(activation="relu") and MaxPool2D).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "datarax/nn/module.h"
#include "datarax/nn/ops/conv.h"
#include "datarax/nn/var_tree.h"

namespace datarax::nn {

struct ConvOptions {
  std::array<std::int64_t, 2> strides{1, 1};
  Padding padding = Padding::same;
  bool use_bias = true;
  // The layer returns relu(conv(x) + bias), fused into the convolution (Conv2dOptions::relu).
  bool relu = false;
  // Then max_pool(·, max_pool, max_pool) with VALID padding, fused into the convolution too
  // (Conv2dOptions::max_pool); {1, 1}: no pooling.
  std::array<std::int64_t, 2> max_pool{1, 1};
  Initializer kernel_init = init::lecun_normal();
  Initializer bias_init = init::zeros();
  PartitionSpec kernel_sharding{};
  PartitionSpec bias_sharding{};
};

class Conv : public Module {
 public:
  Conv(Module& parent, std::string name, std::int64_t in_features, std::int64_t out_features,
       std::array<std::int64_t, 2> kernel_size, ConvOptions options = {});
  // x [N, H, W, in] -> [N, OH, OW, out] (ops/padding.h gives OH, OW)
  Var operator()(const VarTree& p, Var x) const;

  const Param& kernel() const { return kernel_; }
  const Param& bias() const { return bias_; }

 private:
  Param kernel_, bias_;
  Conv2dOptions conv_;
  bool use_bias_;
};

}  // namespace datarax::nn
