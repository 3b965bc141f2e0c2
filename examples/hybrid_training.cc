// The seed's hybrid mesh put to work: the MLP's parameters placed on a ("data", "model") mesh by
// sharding rules — tensor-parallel over "model" — and trained there, with FSDP over "data", to the
// losses of one device at a fraction of the bytes per device.
//
// Run: ./build/examples/hybrid_training
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>

#include "datarax/datarax.h"
#include "datarax/nn/models/mlp.h"
#include "datarax/train/builtin_models.h"
#include "datarax/train/trainer.h"

namespace {

void require(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "hybrid_training: FAILED: " << what << "\n";
  std::exit(1);
}

}  // namespace

int main() {
  namespace train = datarax::train;
  datarax::initialize({.num_cpu_devices = 8});

  // The seed's hybrid mesh: 2 groups of 4 devices; "model" runs inside a group.
  const datarax::distributed::DeviceMeshModule mesh_module;
  const datarax::Mesh hybrid = mesh_module.create_hybrid_mesh(/*data_parallel_size=*/2, /*model_parallel_size=*/4);
  std::cout << "Hybrid mesh info: " << mesh_module.get_mesh_info(hybrid) << "\n";

  // The MLP's parameters on it. Tensor parallelism pairs the layers (Megatron): the first splits
  // its output columns over "model", the second its input rows; the 10-class classifier, which 4
  // does not divide, stays whole on every device.
  // The layers declare it themselves (Dense's column_parallel / row_parallel options), and the
  // module's sharding_rules() collects it.
  const datarax::nn::Mlp mlp({.sizes = {784, 512, 512, 10}});
  const datarax::ShardingRules rules = mlp.sharding_rules();
  const datarax::Tree params = mlp.init(/*seed=*/0);
  const datarax::distributed::DataParallelModule dp_module;
  const datarax::ShardedTree placed = dp_module.shard_model_state(params, hybrid, rules);
  for (const std::string& key : placed.keys()) {
    const datarax::ShardedArray& leaf = placed.at(key);
    std::cout << "  " << key << " " << leaf.shape().to_string() << " -> " << leaf.sharding().spec().to_string()
              << ", per device " << leaf.shards().front().data.shape().to_string() << "\n";
  }

  // The same placement as rules of one's own: (glob, PartitionSpec), the first match wins, and a
  // leaf no rule matches is replicated.
  const datarax::ShardingRules by_hand({{"dense_0/kernel", datarax::PartitionSpec{std::nullopt, "model"}},
                                        {"dense_0/*", datarax::PartitionSpec{"model"}},
                                        {"dense_1/kernel", datarax::PartitionSpec{"model"}}});
  const datarax::ShardedTree placed_by_hand = dp_module.shard_model_state(params, hybrid, by_hand);
  for (const std::string& key : placed.keys())
    require(placed_by_hand.at(key).sharding() == placed.at(key).sharding(), "the rules by hand place " + key + " alike");

  // Training on that mesh: the trainer builds the same mesh from the configuration and places the
  // parameters by the same rules; zero_stage 3 (FSDP) also shards each device's blocks, their
  // gradients and Adam's moments over "data". GELU rather than ReLU: the comparison below is to
  // 1e-5, and a layout sums in another order, which can tip a ReLU input sitting within rounding
  // of 0 (docs/model_parallel.md, "How exact").
  train::TrainConfig config;
  config.data_parallel = 2;
  config.model_parallel = 4;
  config.zero_stage = 3;
  config.steps = 30;
  config.schedule = "constant";
  config.shuffle = false;
  const train::BuiltinModel model{.name = "mlp", .hidden = std::vector<int>{512, 512}, .activation = "gelu"};
  const train::TrainReport report = train::train(model, config);
  const train::DeviceBytes& bytes = report.info.bytes_per_device;
  std::cout << "layout: " << report.info.layout << "\n"
            << "per device: parameters " << bytes.params << " B, gradients " << bytes.grads << " B, optimizer "
            << bytes.optimizer << " B, in flight " << bytes.in_flight << " B\n";

  // The same run on one device.
  train::TrainConfig one = config;
  one.data_parallel = 1;
  one.model_parallel = 1;
  one.zero_stage = 0;
  const train::TrainReport reference = train::train(model, one);
  const train::DeviceBytes& whole = reference.info.bytes_per_device;
  double worst = 0;
  for (std::size_t s = 0; s < report.steps.size(); ++s)
    worst = std::max(worst, std::abs(report.steps[s].loss - reference.steps[s].loss) / reference.steps[s].loss);
  std::cout << "loss: first step " << report.steps.front().loss << ", last " << report.steps.back().loss
            << "; largest relative difference to 1 device: " << worst << "\n";
  const double share = static_cast<double>(bytes.params + bytes.grads + bytes.optimizer) /
                       static_cast<double>(whole.params + whole.grads + whole.optimizer);
  std::cout << "parameters + gradients + optimizer state per device: " << share << " of one device's\n";

  require(report.steps.size() == 30 && worst < 1e-5, "the hybrid run computes the 1-device losses");
  require(report.steps.back().loss < report.steps.front().loss * 0.5, "it learns");
  // Every layer but the classifier is split 4 ways over "model", then everything 2 ways over "data".
  require(share < 1.0 / 8 + 0.01, "a device holds about 1/8 of the model's state");
  std::cout << "hybrid_training: all checks passed\n";
  return 0;
}
