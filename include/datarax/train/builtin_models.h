// The built-in models of datarax-train: the same train() as for a user's model (train/model.h),
// with the model and its data built from a name and its sizes.
//
//   mlp  nn::Mlp 784-<hidden>-10 (default hidden {512, 512}, relu)        on Fashion-MNIST, or
//   cnn  nn::Cnn: two 3x3 conv + max-pool blocks (32, 64 features),        any MNIST-format folder
//        dense 128, dense 10 — Flax's names and NHWC/HWIO layouts, the      (TrainConfig::data_dir)
//        images reshaped to [N, 28, 28, 1]
//   gpt  nn::Gpt, nanoGPT's GPT-2 (nn/models/gpt.h), on the bytes of a text file (`text`), a
//        nanoGPT token file (`tokens`, uint16), or by default the text of Debian's fortunes; the
//        first 90% trains, the rest is the validation ("test") split; the loss is per token
//        (nats); --init and save_parameters use GPT-2's Hugging Face layout
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "datarax/train/trainer.h"

namespace datarax::train {

struct BuiltinModel {
  std::string name = "mlp";           // mlp | cnn | gpt
  // mlp: the hidden widths (unset: {512, 512}; empty: a linear model); cnn: one, the dense
  // layer's width (unset: {128})
  std::optional<std::vector<int>> hidden{};
  std::string activation = "relu";    // mlp: relu | gelu (the tanh approximation)
  // gpt: nanoGPT's sizes and data
  std::int64_t n_layer = 4, n_head = 4, n_embd = 128, block_size = 64;
  double dropout = 0;
  std::string text{};                 // a text file: its bytes (vocabulary 256)
  std::string tokens{};               // nanoGPT's train.bin: little-endian uint16 ids below vocab_size
  std::int64_t vocab_size = 0;        // with tokens (> 0)

  // ConfigError naming the field (model, hidden, activation) for a bad value.
  void validate() const;
};

// Trains `model` on the MNIST-format data in config.data_dir (the Fashion-MNIST package's by
// default). The parameters' keys are Flax's: dense_0/kernel [in, out], conv_0/kernel [3, 3, 1, 32].
TrainReport train(const BuiltinModel& model, const TrainConfig& config, const TrainHooks& hooks = {});

// The default model: train(BuiltinModel{}, config, hooks).
TrainReport train(const TrainConfig& config, const TrainHooks& hooks = {});

// Writes trained parameters (TrainReport::params) as a safetensors file in the model's layout:
// its own keys for mlp and cnn (Flax's), GPT-2's Hugging Face names and sizes for gpt.
void save_parameters(const BuiltinModel& model, const std::string& path, const Tree& params);

}  // namespace datarax::train
