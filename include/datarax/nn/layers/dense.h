// Dense: y = x · kernel + bias, Flax's nn.Dense (kernel [in, out], lecun_normal; bias zeros).
#pragma once

#include <cstdint>
#include <string>

#include "datarax/nn/module.h"
#include "datarax/nn/var_tree.h"

namespace datarax::nn {

struct DenseOptions {
  Initializer kernel_init = init::lecun_normal();
  Initializer bias_init = init::zeros();
  bool use_bias = true;
  // relu(x · kernel + bias) fused into the product (ops/linear.h's linear_relu), where the layer's
  // output is whole on the device (not after a row-parallel sum: there the ReLU follows it).
  bool relu = false;
  // How kernel and bias may be split over mesh axes (Megatron): column-parallel splits the
  // output features (kernel {nullopt, "model"}, bias {"model"}); row-parallel splits the input
  // features (kernel {"model"}, bias replicated). column_parallel() and row_parallel() say so.
  PartitionSpec kernel_sharding{};
  PartitionSpec bias_sharding{};
};

// Megatron's layouts over mesh axis `axis` (default "model").
DenseOptions column_parallel(DenseOptions options = {}, const std::string& axis = "model");
DenseOptions row_parallel(DenseOptions options = {}, const std::string& axis = "model");

class Dense : public Module {
 public:
  Dense(Module& parent, std::string name, std::int64_t in_features, std::int64_t out_features,
        DenseOptions options = {});
  // x [..., in] -> [..., out]. Tensor-parallel when the kernel in `p` is this device's block of
  // a split declared by kernel_sharding (the trainer places it so over a mesh with the axis):
  //   column-parallel (kernel [in, out/M]): x must be whole on every device of the axis; the
  //     result is this device's out/M features (x passes copy_to_axis, ops/collective.h)
  //   row-parallel (kernel [in/M, out]): x is this device's in/M features (a column layer's
  //     output); the partial products are summed over the axis (sum_over_axis), then the bias
  // With the whole kernel it is the plain product, on any device count.
  Var operator()(const VarTree& p, Var x) const;

  const Param& kernel() const { return kernel_; }
  const Param& bias() const { return bias_; }

 private:
  Param kernel_, bias_;
  bool use_bias_, relu_;
  std::int64_t in_, out_;
  std::string in_axis_, out_axis_;  // the mesh axis splitting kernel dimension 0 / 1 ("": none)
};

}  // namespace datarax::nn
