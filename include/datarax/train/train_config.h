// TrainConfig: everything a data-parallel training run is configured by (what datarax-train's
// flags set). Defaults train the README's model: MLP 784-512-512-10, Adam at a peak learning rate
// of 1e-3 (100 warmup steps, then a cosine decay to 0 over the run), global batch 256,
// data-parallel over every local device, 10 epochs of Fashion-MNIST.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datarax/mesh.h"

namespace datarax::train {

struct TrainConfig {
  std::optional<int> devices;              // CPU devices (unset: DATARAX_NUM_CPU_DEVICES or cores)
  std::optional<int> data_parallel;        // size of the "data" axis (unset: every device)
  int epochs = 10;
  std::optional<std::int64_t> steps;       // stop after this many steps
  std::int64_t batch_size = 256;           // global
  bool drop_last = true;                   // else pad the last batch and mask the padding
  std::string optimizer = "adam";          // sgd | adam | adamw
  double lr = 1e-3;
  std::optional<double> momentum;          // sgd only; plain SGD has none
  bool nesterov = false;
  double weight_decay = 1e-4;              // adamw only
  std::string schedule = "warmup_cosine";  // constant | warmup_cosine
  std::int64_t warmup_steps = 100;
  std::optional<double> clip_norm;         // clip gradients by global norm
  bool shard_optimizer_state = false;      // ZeRO-1: each device updates 1/n of the parameters
  std::vector<int> hidden = {512, 512};
  std::string activation = "relu";         // relu | gelu
  std::uint64_t seed = 0;
  std::string data_dir;                    // empty: the Fashion-MNIST package's directory
  bool shuffle = true;
  std::string init_path;                   // initial parameters (safetensors)
  std::string save_path;                   // final parameters (safetensors)
  std::string metrics_out;                 // JSON lines
  std::string plot_path;                   // PNG of the curves (gnuplot)
  std::int64_t log_every = 50;

  // Checks ranges and names; InvalidArgumentError saying what is valid.
  void validate() const;
};

}  // namespace datarax::train
