// The library's trainer from C++: train with an observer and a checkpoint folder, stop on request,
// and resume from the latest checkpoint — on another number of devices — to the same losses.
//
// Run: ./build/examples/train_and_resume [folder]   (default: a new folder under the temp directory)
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "datarax/datarax.h"
#include "datarax/train/builtin_models.h"
#include "datarax/train/checkpoint.h"
#include "datarax/train/trainer.h"

namespace {

void require(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "train_and_resume: FAILED: " << what << "\n";
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  namespace train = datarax::train;
  const fs::path folder = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / ("datarax-example-" + std::to_string(::getpid()));
  datarax::initialize({.num_cpu_devices = 4});

  // The run: a small MLP, 60 steps at a constant learning rate, on every device ("data" = 4).
  const train::BuiltinModel model{.name = "mlp", .hidden = std::vector<int>{128}};
  train::TrainConfig config;
  config.steps = 60;
  config.schedule = "constant";
  config.batch_size = 240;

  // Uninterrupted, for comparison.
  const train::TrainReport whole = train::train(model, config);

  // A checkpoint every 20 steps into the folder, and a stop asked for by the observer at step 30.
  struct StopAt30 final : train::TrainObserver {
    train::StopToken* stop = nullptr;
    void on_step(const train::StepMetrics& m, int, std::int64_t) override {
      if (m.step == 30) stop->request_stop();
    }
  };
  train::StopToken stop;
  StopAt30 observer;
  observer.stop = &stop;
  train::CheckpointDir checkpoints(folder.string(), /*every=*/20);
  const train::TrainReport first = train::train(model, config, {.observer = &observer, .checkpoint = &checkpoints, .stop = &stop});
  std::cout << "stopped: " << first.stopped << " at step " << first.final_step << ", checkpoint "
            << checkpoints.last_saved() << "\n";

  // Resume from the latest checkpoint, on 2 devices instead of 4.
  const train::TrainState state = train::load_checkpoint(train::latest_checkpoint(folder.string()));
  config.data_parallel = 2;
  const train::TrainReport rest = train::train(model, config, {.resume = &state});
  std::cout << "resumed at step " << state.step << " on 2 devices, ran to step " << rest.final_step << "\n";

  // The resumed steps compute what the uninterrupted run computed, to rounding.
  double worst = 0;
  for (const train::StepMetrics& m : rest.steps) {
    const double want = whole.steps[static_cast<std::size_t>(m.step - 1)].loss;
    worst = std::max(worst, std::abs(m.loss - want) / want);
  }
  std::cout << "largest relative loss difference to the uninterrupted run: " << worst << "\n";
  require(first.stopped && first.final_step == 31, "the run stopped after the step in flight");
  require(state.step == 31, "the stop wrote a checkpoint of its last step");
  require(rest.final_step == 60 && worst < 1e-5, "the resumed run matches the uninterrupted one");
  fs::remove_all(folder);
  std::cout << "train_and_resume: all checks passed\n";
  return 0;
}
