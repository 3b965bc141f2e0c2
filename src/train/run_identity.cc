#include "train/run_identity.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/strings.h"
#include "datarax/device_discovery.h"
#include "datarax/nn/precision.h"
#include "datarax/process_collectives.h"
#include "datarax/train/process_agreement.h"

namespace datarax::train::detail {

namespace {

using datarax::detail::join;
using datarax::detail::number;

std::string describe(const data::Dataset& d) { return d.describe(); }

std::string optional_number(const std::optional<double>& x) { return x ? number(*x) : "none"; }

// Every field but the process's own device count and paths, as canonical text.
std::vector<std::pair<std::string, std::string>> shared_fields(const TrainConfig& c) {
  return {{"data_parallel", c.data_parallel ? std::to_string(*c.data_parallel) : "all devices"},
          {"epochs", std::to_string(c.epochs)},
          {"steps", c.steps ? std::to_string(*c.steps) : "all"},
          {"batch_size", std::to_string(c.batch_size)},
          {"drop_last", c.drop_last ? "true" : "false"},
          {"optimizer", c.optimizer},
          {"lr", number(c.lr)},
          {"momentum", optional_number(c.momentum)},
          {"nesterov", c.nesterov ? "true" : "false"},
          {"weight_decay", number(c.weight_decay)},
          {"schedule", c.schedule},
          {"warmup_steps", std::to_string(c.warmup_steps)},
          {"clip_norm", optional_number(c.clip_norm)},
          {"model_parallel", std::to_string(c.model_parallel)},
          {"zero_stage", c.zero_stage ? std::to_string(*c.zero_stage) : "default"},
          {"gradient_bucket_bytes", std::to_string(c.gradient_bucket_bytes)},
          {"precision", c.precision},
          {"seed", std::to_string(c.seed)},
          {"shuffle", c.shuffle ? "true" : "false"},
          {"log_every", std::to_string(c.log_every)}};
}

}  // namespace

Identity must_match(const TrainConfig& c, const std::string& model, const data::Dataset& train, const data::Dataset& test,
                    std::int64_t total_steps) {
  const std::string schedule =
      c.schedule == "constant"
          ? "constant"
          : "warmup_cosine (warmup " + std::to_string(c.warmup_steps) + " steps, decay over " +
                std::to_string(std::max(total_steps, c.warmup_steps + 1)) + " steps: the run's total)";
  return {{"data", train.name() + ": " + describe(train) + "; " + test.name() + ": " + describe(test)},
          {"model", model},
          {"precision", c.precision},
          {"optimizer", c.optimizer},
          {"lr", number(c.lr)},
          {"momentum", optional_number(c.momentum)},
          {"nesterov", c.nesterov ? "true" : "false"},
          {"weight_decay", number(c.weight_decay)},
          {"schedule", schedule},
          {"clip_norm", optional_number(c.clip_norm)},
          {"seed", std::to_string(c.seed)},
          {"shuffle", c.shuffle ? "true" : "false"},
          {"batch_size", std::to_string(c.batch_size)},
          {"drop_last", c.drop_last ? "true" : "false"}};
}

Identity layout_of(const TrainConfig& c, const Mesh& mesh) {
  return {{"mesh", mesh.to_string()},
          {"devices", std::to_string(mesh.size())},
          {"processes", std::to_string(process_count())},
          {"model_parallel", std::to_string(c.model_parallel)},
          {"zero_stage", std::to_string(c.zero_stage.value())}};
}

void check_resumable(const Identity& mine, const Identity& checkpoint) {
  for (const auto& [key, value] : mine) {
    const auto it = checkpoint.find(key);
    const std::string theirs = it == checkpoint.end() ? "(not recorded)" : it->second;
    if (theirs == value) continue;
    throw ConfigError(key == "data" ? "data_dir" : key, value,
                      "the checkpoint was trained with " + key + " " + theirs + "; resuming needs the same " + key);
  }
}

void check_same_on_every_process(const TrainConfig& c, const std::string& model) {
  if (process_count() == 1) return;
  AgreementItems items = shared_fields(c);
  items.emplace_back("model", model);
  // The --init file by its contents (its path may differ between hosts).
  items.emplace_back("init_path", c.init_path.empty() ? "(none)" : file_digest(c.init_path));
  check_processes_agree(items, "train: comparing the processes' settings");
}

void check_same_data_on_every_process(const data::Dataset& train, const data::Dataset& test) {
  if (process_count() == 1) return;
  // By contents, not names: the data's folder may have another path on another host.
  check_processes_agree({{"data_dir", "train " + describe(train) + "; test " + describe(test)}},
                        "train: comparing the processes' data");
}

void check_precision_supported(const TrainConfig& c) {
  const nn::Precision precision = nn::parse_precision(c.precision);
  const bool here = nn::cpu_supports(precision);
  const char* const why = " (VDPBF16PS) for bf16 matrix products, and datarax does not emulate it; valid";
  if (process_count() == 1) {
    if (!here) throw ConfigError("precision", c.precision, std::string("this CPU has no AVX512_BF16") + why + " here: f32");
    return;
  }
  // Every process learns which ones cannot, so that all of them stop with the same message.
  const std::vector<std::string> all =
      process_all_gather(std::string(here ? "1" : "0"), "train: checking that every process's CPU has the precision");
  for (std::size_t p = 0; p < all.size(); ++p)
    if (all[p] != "1")
      throw ConfigError("precision", c.precision,
                        "process " + std::to_string(p) + " of " + std::to_string(all.size()) +
                            " runs on a CPU without AVX512_BF16" + why + ": f32");
}

}  // namespace datarax::train::detail
