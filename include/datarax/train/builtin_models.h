// The built-in models of datarax-train, on Fashion-MNIST (or any MNIST-format directory:
// TrainConfig::data_dir): the same train() as for a user's model (train/model.h), with the
// model built from a name and its sizes.
//
//   mlp  nn::Mlp 784-<hidden>-10 (default hidden {512, 512}, relu)
//   cnn  nn::Cnn: two 3x3 conv + max-pool blocks (32, 64 features), dense 128, dense 10 — Flax's
//        names and NHWC/HWIO layouts, the images reshaped to [N, 28, 28, 1]
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "datarax/train/trainer.h"

namespace datarax::train {

struct BuiltinModel {
  std::string name = "mlp";           // mlp | cnn
  // mlp: the hidden widths (unset: {512, 512}; empty: a linear model); cnn: one, the dense
  // layer's width (unset: {128})
  std::optional<std::vector<int>> hidden;
  std::string activation = "relu";    // mlp: relu | gelu (the tanh approximation)

  // ConfigError naming the field (model, hidden, activation) for a bad value.
  void validate() const;
};

// Trains `model` on the MNIST-format data in config.data_dir (the Fashion-MNIST package's by
// default). The parameters' keys are Flax's: dense_0/kernel [in, out], conv_0/kernel [3, 3, 1, 32].
TrainReport train(const BuiltinModel& model, const TrainConfig& config, const TrainHooks& hooks = {});

// The default model: train(BuiltinModel{}, config, hooks).
TrainReport train(const TrainConfig& config, const TrainHooks& hooks = {});

}  // namespace datarax::train
