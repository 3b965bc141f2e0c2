#include "datarax/train/train_config.h"

#include "datarax/error.h"

namespace datarax::train {

namespace {
[[noreturn]] void bad(const std::string& what) { throw InvalidArgumentError(what); }
}  // namespace

void TrainConfig::validate() const {
  if (epochs < 1) bad("--epochs " + std::to_string(epochs) + ": must be >= 1");
  if (steps && *steps < 1) bad("--steps " + std::to_string(*steps) + ": must be >= 1");
  if (batch_size < 1) bad("--batch-size " + std::to_string(batch_size) + ": must be >= 1");
  if (optimizer != "sgd" && optimizer != "adam" && optimizer != "adamw")
    bad("--optimizer " + optimizer + ": unknown optimizer; valid: sgd, adam, adamw");
  if (!(lr > 0)) bad("--lr " + std::to_string(lr) + ": must be > 0");
  if (momentum && (*momentum < 0 || *momentum >= 1)) bad("--momentum " + std::to_string(*momentum) + ": must be in [0, 1)");
  if (momentum && optimizer != "sgd") bad("--momentum applies to --optimizer sgd only");
  if (nesterov && (optimizer != "sgd" || !momentum)) bad("--nesterov needs --optimizer sgd with --momentum");
  if (weight_decay < 0) bad("--weight-decay " + std::to_string(weight_decay) + ": must be >= 0");
  if (schedule != "constant" && schedule != "warmup_cosine")
    bad("--schedule " + schedule + ": unknown schedule; valid: constant, warmup_cosine");
  if (warmup_steps < 0) bad("--warmup-steps " + std::to_string(warmup_steps) + ": must be >= 0");
  if (clip_norm && !(*clip_norm > 0)) bad("--clip-norm " + std::to_string(*clip_norm) + ": must be > 0");
  for (int h : hidden)
    if (h < 1) bad("--hidden: layer width " + std::to_string(h) + " must be >= 1");
  if (activation != "relu" && activation != "gelu")
    bad("--activation " + activation + ": unknown activation; valid: relu, gelu");
  if (log_every < 1) bad("--log-every " + std::to_string(log_every) + ": must be >= 1");
  if (data_parallel && *data_parallel < 1) bad("--mesh data=" + std::to_string(*data_parallel) + ": must be >= 1");
}

}  // namespace datarax::train
