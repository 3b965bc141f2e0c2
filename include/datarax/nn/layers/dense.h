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
  // How kernel and bias may be split over mesh axes (Megatron): column-parallel splits the
  // output features (kernel {nullopt, "model"}, bias {"model"}); row-parallel splits the input
  // features (kernel {"model"}, bias replicated).
  PartitionSpec kernel_sharding{};
  PartitionSpec bias_sharding{};
};

class Dense : public Module {
 public:
  Dense(Module& parent, std::string name, std::int64_t in_features, std::int64_t out_features,
        DenseOptions options = {});
  // x [..., in] -> [..., out]
  Var operator()(const VarTree& p, Var x) const;

  const Param& kernel() const { return kernel_; }
  const Param& bias() const { return bias_; }

 private:
  Param kernel_, bias_;
  bool use_bias_;
};

}  // namespace datarax::nn
