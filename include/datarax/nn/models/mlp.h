// Mlp: a multi-layer perceptron classifier, written as a module like any user's model:
//
//   dense_0 .. dense_<L-1>   Dense layers sizes[l] -> sizes[l+1] (kernel [in, out], He-uniform;
//                            bias zeros), the activation between them, logits last
//
// Tensor parallelism (Megatron) comes from the layers' sharding alone: layers pair up as
// column-parallel then row-parallel over the "model" axis (an odd last layer stays whole), so
// that one all-reduce per pair joins the blocks. On a mesh without "model" the same model is
// the plain one. datarax-train's default model: {784, 512, 512, 10}, relu.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datarax/nn/activation.h"
#include "datarax/nn/layers/dense.h"
#include "datarax/nn/module.h"

namespace datarax::nn {

struct MlpConfig {
  std::vector<int> sizes{784, 512, 512, 10};  // layer widths, input first, classes last
  Activation activation = Activation::relu;     // gelu: the tanh approximation
};

class Mlp : public Module {
 public:
  // Refuses fewer than two sizes or a width below 1, naming it.
  explicit Mlp(MlpConfig config = {});
  // x [N, sizes.front()] -> logits [N, sizes.back()]
  Var operator()(const VarTree& p, Var x) const;

  const MlpConfig& config() const { return config_; }
  // "MLP 784-512-512-10 (relu)"
  std::string describe() const;
  // Widths a model axis of `m` devices splits (the column layers' outputs); refuses, naming the
  // width and the valid sizes, where m does not divide one.
  void check_model_axis(int m) const;

 private:
  MlpConfig config_;
  std::vector<std::unique_ptr<Dense>> layers_;
};

}  // namespace datarax::nn
