#include "datarax/train/train_config.h"

#include <cmath>

#include "core/strings.h"

namespace datarax::train {

ConfigError::ConfigError(std::string field, std::string value, std::string problem)
    : InvalidArgumentError("TrainConfig." + field + " = " + value + ": " + problem),
      field_(std::move(field)),
      value_(std::move(value)),
      problem_(std::move(problem)) {}

namespace {
using datarax::detail::number;

[[noreturn]] void bad(std::string field, std::string value, std::string problem) {
  throw ConfigError(std::move(field), std::move(value), std::move(problem));
}
}  // namespace

void TrainConfig::validate() const {
  if (devices && (*devices < 1 || *devices > 1024))
    bad("devices", std::to_string(*devices), "out of range; valid: 1 to 1024");
  if (data_parallel && *data_parallel < 1) bad("data_parallel", std::to_string(*data_parallel), "must be >= 1");
  if (model_parallel < 1) bad("model_parallel", std::to_string(model_parallel), "must be >= 1");
  if (zero_stage && (*zero_stage < 0 || *zero_stage > 3))
    bad("zero_stage", std::to_string(*zero_stage),
        "out of range; valid: 0 (replicated), 1 (optimizer state sharded), 2 (and gradients), 3 (and parameters: FSDP)");
  if (epochs < 1) bad("epochs", std::to_string(epochs), "must be >= 1");
  if (steps && *steps < 1) bad("steps", std::to_string(*steps), "must be >= 1");
  if (batch_size < 1) bad("batch_size", std::to_string(batch_size), "must be >= 1");
  if (optimizer != "sgd" && optimizer != "adam" && optimizer != "adamw")
    bad("optimizer", optimizer, "unknown optimizer; valid: sgd, adam, adamw");
  if (!(lr > 0) || !std::isfinite(lr)) bad("lr", number(lr), "must be a finite number > 0");
  if (momentum && !(*momentum >= 0 && *momentum < 1)) bad("momentum", number(*momentum), "must be in [0, 1)");
  if (momentum && optimizer != "sgd") bad("momentum", number(*momentum), "applies to optimizer sgd only");
  if (nesterov && (optimizer != "sgd" || !momentum)) bad("nesterov", "true", "needs optimizer sgd with a momentum");
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay))
    bad("weight_decay", number(weight_decay), "must be a finite number >= 0");
  if (schedule != "constant" && schedule != "warmup_cosine")
    bad("schedule", schedule, "unknown schedule; valid: constant, warmup_cosine");
  if (warmup_steps < 0) bad("warmup_steps", std::to_string(warmup_steps), "must be >= 0");
  if (clip_norm && (!(*clip_norm > 0) || !std::isfinite(*clip_norm)))
    bad("clip_norm", number(*clip_norm), "must be a finite number > 0");
  if (gradient_bucket_bytes < 0)
    bad("gradient_bucket_bytes", std::to_string(gradient_bucket_bytes), "must be >= 0 (0: one bucket)");
  if (precision != "f32" && precision != "bf16") bad("precision", precision, "unknown precision; valid: f32, bf16");
  if (log_every < 1) bad("log_every", std::to_string(log_every), "must be >= 1");
}

}  // namespace datarax::train
