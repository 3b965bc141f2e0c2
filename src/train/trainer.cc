#include "datarax/train/trainer.h"

#include "train/host_loop.h"
#include "train/setup.h"

namespace datarax::train {

TrainReport train(const TrainConfig& config, const TrainHooks& hooks) {
  detail::Setup setup(config, hooks.resume);
  return detail::HostLoop(setup, hooks).run();
}

}  // namespace datarax::train
