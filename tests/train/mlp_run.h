// The trainer tests' runs: a TrainConfig and the built-in MLP's sizes, trained by the built-in
// model's train() (train/builtin_models.h).
#pragma once

#include <string>
#include <vector>

#include "datarax/train/builtin_models.h"
#include "datarax/train/trainer.h"

namespace datarax::test {

struct MlpRun : train::TrainConfig {
  std::vector<int> hidden = {512, 512};
  std::string activation = "relu";
  train::BuiltinModel model() const { return {.name = "mlp", .hidden = hidden, .activation = activation}; }
};

inline train::TrainReport train(const MlpRun& run, const train::TrainHooks& hooks = {}) {
  return datarax::train::train(run.model(), run, hooks);
}

}  // namespace datarax::test
