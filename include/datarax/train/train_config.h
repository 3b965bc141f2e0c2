// TrainConfig: how a training run goes — everything but the model (train/model.h; the built-in
// ones' sizes are BuiltinModel's, train/builtin_models.h). Defaults: Adam at a peak learning rate
// of 1e-3 (100 warmup steps, then a cosine decay to 0 over the run), global batch 256,
// data-parallel over every local device, 10 epochs (of Fashion-MNIST for the built-in models).
//
// Layouts (docs/model_parallel.md): the mesh is ("data") or, with model_parallel > 1, the hybrid
// ("data", "model"); the model is tensor-parallel over "model" by its parameters' sharding specs
// (the built-in MLP and CNN: Megatron's column/row pairs), and zero_stage shards over "data" the
// optimizer state (1, the default on several devices of one process), the gradients too (2), and
// the parameters too (3: FSDP), for any model.
//
// A bad value throws ConfigError, which names the field as it is spelled here, its value and what
// is valid: `TrainConfig.batch_size = 256: not divisible by the data axis (3 devices); use a
// multiple of 3`. (A command-line tool maps the field to its own flag; see tools/.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datarax/error.h"

namespace datarax::train {

struct TrainConfig {
  std::optional<int> devices;              // CPU devices (unset: DATARAX_NUM_CPU_DEVICES or cores)
  std::optional<int> data_parallel;        // size of the "data" axis (unset: every device / model_parallel)
  int model_parallel = 1;                  // size of the "model" axis: tensor parallelism
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
  // 0 replicated; ZeRO 1: optimizer state, 2: + gradients, 3: + parameters (FSDP), sharded over
  // "data". Unset: 1 where the data axis has several devices, all in this process, and gradients are
  // not bucketed (gradient_bucket_bytes 0) — bit for bit the replicated step's results, in less
  // memory, at the same speed here (docs/performance.md); else 0.
  std::optional<int> zero_stage;
  // Stage 0: gradients are all-reduced in buckets of at most this many bytes, in one flat buffer;
  // 0 (the default) is one bucket for all of them: one collective per step.
  std::int64_t gradient_bucket_bytes = 0;
  // f32 | bf16: the matrix products' precision (datarax/nn/precision.h). bf16 rounds their operands
  // to bfloat16 and sums in f32 — about twice as fast on a CPU with AVX512_BF16, which it needs;
  // activations, loss, gradients, their reduction, the optimizer and the parameters stay f32.
  std::string precision = "f32";
  std::uint64_t seed = 0;
  std::string data_dir;                    // built-in models: empty is the Fashion-MNIST package's directory
  bool shuffle = true;
  std::string init_path;                   // initial parameters (safetensors); empty: seeded init
  std::int64_t log_every = 50;             // steps per samples/s window of StepMetrics
  bool time_phases = false;                // StepMetrics::phase_seconds: where each step's time goes

  // Checks every field's range and names; ConfigError for the first bad one.
  void validate() const;
};

// A TrainConfig field with a value the trainer cannot use, or an input it names (init_path,
// data_dir) that cannot be read.
class ConfigError : public InvalidArgumentError {
 public:
  // `field` as spelled in TrainConfig, `value` as text, `problem` what is wrong and what is valid.
  ConfigError(std::string field, std::string value, std::string problem);
  const std::string& field() const { return field_; }
  const std::string& value() const { return value_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string field_, value_, problem_;
};

}  // namespace datarax::train
