// LayerNorm: Flax's nn.LayerNorm over the last axis — parameters `scale` [C] (ones) and `bias`
// [C] (zeros), y = (x − mean) / √(var + epsilon) · scale + bias (ops/layer_norm.h).
#pragma once

#include <cstdint>
#include <string>

#include "datarax/nn/module.h"
#include "datarax/nn/var_tree.h"

namespace datarax::nn {

struct LayerNormOptions {
  double epsilon = 1e-5;  // PyTorch's and GPT-2's (Flax's default is 1e-6)
  Initializer scale_init = init::ones();
  Initializer bias_init = init::zeros();
};

class LayerNorm : public Module {
 public:
  LayerNorm(Module& parent, std::string name, std::int64_t features, LayerNormOptions options = {});
  // x [..., features] -> [..., features]
  Var operator()(const VarTree& p, Var x) const;

  const Param& scale() const { return scale_; }
  const Param& bias() const { return bias_; }

 private:
  Param scale_, bias_;
  double epsilon_;
};

}  // namespace datarax::nn
