// Cnn: the classic small convolutional classifier (Flax's MNIST example), NHWC, with Flax's names
// and layouts so that parameters written elsewhere load as they are:
//
//   conv_0  kernel [3, 3, C, 32] bias [32]    SAME, stride 1, ReLU, max pool 2x2 stride 2
//   conv_1  kernel [3, 3, 32, 64] bias [64]   the same
//   flatten in (h, w, c) order                [N, 7 · 7 · 64 = 3136] for 28x28 inputs
//   dense_0 kernel [3136, 128] bias [128]     ReLU
//   dense_1 kernel [128, 10] bias [10]        logits
//
// Written the way a user writes a model (module.h): submodules as members, a call operator of ops
// (the conv layers with their ReLU fused in: ConvOptions::relu). Over a "model" axis dense_0 is
// column-parallel and dense_1 row-parallel (Megatron); the convolutions are replicated.
// Every size is configurable (tests use a tiny one). Images are [N, height, width, channels] of the
// parameters' dtype; scaling pixels (/255) is the data's business.
#pragma once

#include <cstdint>

#include "datarax/nn/layers/conv.h"
#include "datarax/nn/layers/dense.h"
#include "datarax/nn/module.h"
#include "datarax/nn/var_tree.h"

namespace datarax::nn {

struct CnnConfig {
  std::int64_t height = 28, width = 28, channels = 1;
  std::int64_t conv_0_features = 32, conv_1_features = 64;
  std::int64_t hidden = 128;
  std::int64_t classes = 10;
};

class Cnn : public Module {
 public:
  explicit Cnn(CnnConfig config = {});
  // images [N, height, width, channels] -> logits [N, classes]
  Var operator()(const VarTree& p, Var images) const;

  const CnnConfig& config() const { return config_; }
  // Features after the two conv + pool blocks: (height / 4) · (width / 4) · conv_1_features.
  std::int64_t flat_features() const { return flat_; }

 private:
  CnnConfig config_;
  std::int64_t flat_;
  Conv conv_0_, conv_1_;
  Dense dense_0_, dense_1_;
};

}  // namespace datarax::nn
