// Data-parallel training on Fashion-MNIST: the seed's "Example: Data-Parallel Training", step by
// step, with real types — a mesh, a sharding, an MLP, Adam, a train state, shard_batch and a
// pmapped step that averages gradients with reduce_mean(grads, "batch").
//
// It runs a few steps (the CTest test example_data_parallel_training checks that the loss falls);
// datarax-train is the full trainer, with epochs, evaluation, checkpoints and metrics.
//
// Run: ./build/examples/data_parallel_training [steps]
#include <cstdlib>
#include <iostream>
#include <string>

#include "datarax/datarax.h"
#include "datarax/data/loader.h"
#include "datarax/data/mnist.h"
#include "datarax/nn/models/mlp.h"
#include "datarax/nn/ops/cross_entropy.h"
#include "datarax/nn/value_and_grad.h"
#include "datarax/optim/adam.h"

namespace {

void require(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "data_parallel_training: FAILED: " << what << "\n";
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  using datarax::Array;
  using datarax::Tree;
  using datarax::distributed::DataParallelModule;
  using datarax::distributed::DeviceMeshModule;
  using datarax::distributed::DistributedMetricsModule;
  const int num_steps = argc > 1 ? std::atoi(argv[1]) : 30;
  datarax::initialize({.num_cpu_devices = 4});

  // Initialize modules
  DeviceMeshModule mesh_module;
  DataParallelModule dp_module;
  DistributedMetricsModule metrics_module;

  // Create device mesh
  datarax::Mesh mesh = mesh_module.create_data_parallel_mesh();
  datarax::NamedSharding sharding = dp_module.create_data_parallel_sharding(mesh);

  // Define model and optimizer
  const datarax::nn::Mlp model({.sizes = {784, 128, 10}});
  const auto optimizer = datarax::optim::adam(/*learning_rate=*/1e-3);

  // Create training state: parameters and optimizer state, one replica per device.
  const Tree params = model.init(/*seed=*/0);
  Tree state = params.with_prefix("params");
  for (const auto& [key, leaf] : optimizer->init(params)) state.set("opt_state/" + key, leaf);
  datarax::ShardedTree sharded_state = dp_module.shard_model_state(state, mesh);

  // Load data: global batches of 256 Fashion-MNIST images, each device taking 64.
  const datarax::data::ArrayDataset train_set = datarax::data::load_mnist(datarax::data::kDefaultFashionMnistDir, "train");
  datarax::data::Loader loader(train_set, {.global_batch = 256, .seed = 0});
  const std::int64_t per_device = 256 / mesh.size();

  // The loss of a device's slice, and its gradient function (the seed's nnx.grad): one per device,
  // each recording the computation once and replaying it.
  auto loss_fn = [&](const datarax::nn::VarTree& p, const datarax::nn::VarTree& b) {
    return datarax::nn::softmax_cross_entropy(model(p, b["inputs"]), b["labels"], b["mask"]);
  };
  std::vector<std::unique_ptr<datarax::nn::ValueAndGrad>> grad_fns;
  for (int i = 0; i < mesh.size(); ++i) grad_fns.push_back(std::make_unique<datarax::nn::ValueAndGrad>(loss_fn));
  std::cout << "per device: " << per_device << " examples a step\n";

  // Define a pmapped training step.
  auto train_step = datarax::pmap(
      [&](const Tree& local_state, const Tree& local_batch) {
        datarax::nn::ValueAndGrad& grad_fn = *grad_fns[static_cast<std::size_t>(datarax::axis_index("batch"))];
        Tree local_params = local_state.subtree("params");
        Tree opt_state = local_state.subtree("opt_state");

        // Compute gradients
        const auto [loss, local_grads] = grad_fn(local_params, local_batch);

        // Average gradients across devices
        Tree grads = metrics_module.reduce_mean(local_grads, "batch");

        // Update parameters: every device applies the same update to its own replica, in place.
        optimizer->update(grads, opt_state, local_params);
        datarax::optim::apply_updates(local_params, grads);

        // The loss of the global batch, for reporting, the same on every device.
        return Tree{{"loss", metrics_module.reduce_mean(Tree{{"loss", Array::scalar<double>(loss)}}, "batch").at("loss")}};
      },
      "batch", {.output = datarax::PmapOutput::replicated});

  // Train for multiple steps
  Tree batch;
  double first = 0, last = 0;
  for (int step = 0; step < num_steps && loader.next(batch); ++step) {
    batch.erase("count");  // a scalar for the whole global batch; shard_batch splits per example
    datarax::ShardedTree sharded_batch = dp_module.shard_batch(batch, sharding);
    last = train_step(sharded_state, sharded_batch).at("loss").gather().item<double>();
    if (step == 0) first = last;
    if (step % 10 == 0) std::cout << "step " << step + 1 << ": loss " << last << "\n";
  }
  std::cout << "loss: first step " << first << ", step " << num_steps << " " << last << "\n";
  require(last < first * 0.6, "the loss falls");

  // The replicas stayed identical: every device applied the same averaged gradients.
  const Tree on_device0 = sharded_state.local_tree(mesh.devices()[0]);
  const Tree on_device3 = sharded_state.local_tree(mesh.devices()[3]);
  require(datarax::bitwise_equal(on_device0, on_device3), "replicas are bitwise equal");
  require(!on_device0.at("params/dense_0/kernel").shares_buffer_with(on_device3.at("params/dense_0/kernel")),
          "each device has its own replica");
  std::cout << "data_parallel_training: all checks passed\n";
  return 0;
}
