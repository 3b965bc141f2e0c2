// Data-parallel training steps: the seed's "Example: Data-Parallel Training" and "Using with JAX
// Transformations" sections, in C++, on a tiny linear model whose gradient comes from
// value_and_grad (the seed's nnx.grad).
//
// The model is pred = x W + b with x: [B, 4], W: [4, 2], b: [2], trained by plain SGD on the mean
// squared error against targets made by a known W_true, b_true. Every device runs the same step on
// its slice of the batch; only the gradient average (reduce_mean over the pmap axis "batch")
// crosses devices, so after it every device applies the same update and the replicas stay equal.
//
// Run: ./build/examples/data_parallel_step   (checked by the CTest test example_data_parallel_step)
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>

#include "datarax/datarax.h"

namespace {

using datarax::Array;
using datarax::Tree;

constexpr int kBatch = 64, kIn = 4, kOut = 2;
constexpr float kLearningRate = 0.1f;

void require(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "data_parallel_step: FAILED: " << what << "\n";
  std::exit(1);
}

// The true parameters the data is made from: W_true[i][j] = (i - j) / 4, b_true[j] = j - 0.5.
float w_true(int i, int j) { return static_cast<float>(i - j) / 4.0f; }
float b_true(int j) { return static_cast<float>(j) - 0.5f; }

// A batch of kBatch examples: inputs by formula (each column its own frequency, so that W is
// determined by the data), targets from the true model.
Tree load_data_batch() {
  Array inputs = Array::empty({kBatch, kIn});
  Array targets = Array::empty({kBatch, kOut});
  for (int n = 0; n < kBatch; ++n) {
    for (int i = 0; i < kIn; ++i) inputs.at<float>({n, i}) = std::sin(0.37f * static_cast<float>((n + 1) * (i + 1) + i));
    for (int j = 0; j < kOut; ++j) {
      float t = b_true(j);
      for (int i = 0; i < kIn; ++i) t += inputs.at<float>({n, i}) * w_true(i, j);
      targets.at<float>({n, j}) = t;
    }
  }
  return Tree{{"inputs", inputs}, {"targets", targets}};
}

// pred = x W + b, for x: [B, kIn]. Works for one example too (x: [kIn] gives pred: [kOut]).
Array forward(const Tree& params, const Array& x) {
  const Array& w = params.at("params/w");
  const Array& b = params.at("params/b");
  const std::int64_t rows = x.rank() == 1 ? 1 : x.shape()[0];
  Array pred = Array::empty(x.rank() == 1 ? datarax::Shape{kOut} : datarax::Shape{rows, kOut});
  auto xs = x.data<float>();
  auto ps = pred.data<float>();
  for (std::int64_t n = 0; n < rows; ++n)
    for (int j = 0; j < kOut; ++j) {
      float acc = b.data<float>()[static_cast<std::size_t>(j)];
      for (int i = 0; i < kIn; ++i)
        acc += xs[static_cast<std::size_t>(n * kIn + i)] * w.at<float>({i, j});
      ps[static_cast<std::size_t>(n * kOut + j)] = acc;
    }
  return pred;
}

// The loss, written forward only: the mean over the local batch and outputs of (pred - target)^2.
datarax::nn::Var mse_loss(const datarax::nn::VarTree& params, const datarax::nn::VarTree& batch) {
  using namespace datarax::nn;
  Var pred = linear(batch["inputs"], params["params/w"], params["params/b"]);  // x W + b
  Var err = pred - batch["targets"];
  return mean(err * err);
}

// The seed's nnx.grad: the loss and its gradient w.r.t. every parameter, by automatic
// differentiation. Each device thread records the loss once and replays it at every later step;
// the gradient Tree it returns is overwritten by the thread's next call.
std::pair<float, Tree> loss_and_grad(const Tree& params, const Tree& batch) {
  thread_local datarax::nn::ValueAndGrad grad_fn(mse_loss);
  auto [loss, grads] = grad_fn(params, batch);
  return {static_cast<float>(loss), grads};
}

}  // namespace

int main() {
  using datarax::distributed::DataParallelModule;
  using datarax::distributed::DeviceMeshModule;
  using datarax::distributed::DistributedMetricsModule;
  datarax::initialize({.num_cpu_devices = 8});

  // Initialize modules
  DeviceMeshModule mesh_module;
  DataParallelModule dp_module;
  DistributedMetricsModule metrics_module;

  // Create device mesh
  datarax::Mesh mesh = mesh_module.create_data_parallel_mesh();
  datarax::NamedSharding sharding = dp_module.create_data_parallel_sharding(mesh);

  // Define model and optimizer: the parameters start at zero; the optimizer is SGD.
  Tree params{{"params/w", Array::zeros({kIn, kOut})}, {"params/b", Array::zeros({kOut})}};

  // Create training state: the parameters and a step counter, replicated on every device.
  Tree state = params;
  state.set("step", Array::scalar<std::int64_t>(0));
  datarax::ShardedTree sharded_state = dp_module.shard_model_state(state, mesh);

  // Load data and shard it: each of the 8 devices gets 8 of the 64 examples, as views.
  Tree batch = load_data_batch();
  datarax::ShardedTree sharded_batch = dp_module.shard_batch(batch, sharding);

  // Define a pmapped training step. Inside, "batch" names the pmap axis, as in the seed.
  auto train_step = datarax::pmap(
      [&](const Tree& local_state, const Tree& local_batch) {
        const Tree local_params = local_state.subtree("params").with_prefix("params");
        // Compute gradients on this device's slice of the batch.
        auto [loss, grads] = loss_and_grad(local_params, local_batch);

        // Average gradients across devices.
        grads = metrics_module.reduce_mean(grads, "batch");

        // Update parameters: params - lr * grads, the same on every device.
        Tree new_state = datarax::map2(local_params, grads, [](const Array& p, const Array& g) {
          Array out = p.copy();
          for (std::size_t k = 0; k < out.data<float>().size(); ++k)
            out.data<float>()[k] -= kLearningRate * g.data<float>()[k];
          return out;
        });
        new_state.set("step", Array::scalar<std::int64_t>(local_state.at("step").item<std::int64_t>() + 1));

        // Metrics for reporting, reduced across devices so every replica holds the same values.
        Tree metrics{{"loss", Array::scalar<float>(loss)}, {"step", new_state.at("step")}};
        metrics = metrics_module.reduce_custom(metrics, {{"loss", "mean"}, {"step", "max"}}, "batch");
        new_state.set("metrics/loss", metrics.at("loss"));
        return new_state;
      },
      "batch", {.output = datarax::PmapOutput::replicated});

  // Train for multiple steps: the state goes around, replicated, from one step to the next.
  const int num_steps = 200;
  float first_loss = 0, last_loss = 0;
  for (int step = 0; step < num_steps; ++step) {
    sharded_state = train_step(sharded_state, sharded_batch);
    last_loss = sharded_state.at("metrics/loss").gather().item<float>();
    if (step == 0) first_loss = last_loss;
    // The next step's state has no metrics in it.
    datarax::ShardedTree next;
    for (const auto& key : sharded_state.keys())
      if (!key.starts_with("metrics/")) next.set(key, sharded_state.at(key));
    sharded_state = next;
  }
  std::cout << "loss: step 1 " << first_loss << ", step " << num_steps << " " << last_loss << "\n";
  const Tree trained = sharded_state.gather();
  require(trained.at("step").item<std::int64_t>() == num_steps, "the step counter counts every step");
  require(last_loss < first_loss * 1e-3f, "the loss falls by three orders of magnitude");
  for (int i = 0; i < kIn; ++i)
    for (int j = 0; j < kOut; ++j)
      require(std::abs(trained.at("params/w").at<float>({i, j}) - w_true(i, j)) < 1e-2f, "W approaches W_true");

  // The same steps on one device, with the whole batch, reach the same parameters: averaging the
  // 8 shards' gradients is the full batch's gradient (equal shards), up to rounding.
  Tree single = params;
  for (int step = 0; step < num_steps; ++step) {
    Tree grads = loss_and_grad(single, batch).second;
    single = datarax::map2(single, grads, [](const Array& p, const Array& g) {
      Array out = p.copy();
      for (std::size_t k = 0; k < out.data<float>().size(); ++k) out.data<float>()[k] -= kLearningRate * g.data<float>()[k];
      return out;
    });
  }
  float max_diff = 0;
  for (const auto& key : single.keys())
    for (std::size_t k = 0; k < single.at(key).data<float>().size(); ++k)
      max_diff = std::max(max_diff, std::abs(single.at(key).data<float>()[k] - trained.at(key).data<float>()[k]));
  std::cout << "8 devices vs 1 device, largest parameter difference: " << max_diff << "\n";
  require(max_diff < 1e-5f, "8-device training matches 1-device training");

  // --- Using with JAX transformations ----------------------------------------------------------
  // Apply vmap to process multiple examples: the model written for one example, mapped over rows.
  auto vmapped_model = datarax::vmap([&](const Array& x) { return forward(trained, x); });

  // Create a pmap function to run across devices.
  auto pmapped_forward = datarax::pmap(
      [&](const Tree& local_batch) { return Tree{{"outputs", vmapped_model(local_batch.at("inputs"))}}; },
      "batch");

  // Run forward pass across devices: outputs are stacked, one block of 8 rows per device.
  datarax::ShardedTree outputs = pmapped_forward(sharded_batch);
  const Array predicted = outputs.at("outputs").gather();
  std::cout << "pmapped forward: outputs " << predicted.shape().to_string() << "\n";
  require(predicted.shape() == datarax::Shape({8, kBatch / 8, kOut}), "one block of 8 rows per device");
  const Array direct = forward(trained, batch.at("inputs"));
  require(std::equal(direct.data<float>().begin(), direct.data<float>().end(), predicted.data<float>().begin()),
          "pmap(vmap(model)) equals the model on the whole batch");

  // Per-device metrics collected outside the step: one value per device, in mesh order.
  const Tree trained_params = trained.subtree("params").with_prefix("params");
  auto per_device_loss = datarax::pmap(
      [&](const Tree& local_batch) {
        return Tree{{"loss", Array::scalar<float>(loss_and_grad(trained_params, local_batch).first)}};
      },
      "batch")(sharded_batch);
  const auto collected = metrics_module.collect_from_devices(per_device_loss);
  std::cout << "per-device loss:";
  for (const Array& v : collected.at("loss")) std::cout << " " << v.item<float>();
  std::cout << "\nmean loss: " << metrics_module.reduce_mean(per_device_loss).at("loss").item<float>() << "\n";
  require(collected.at("loss").size() == 8, "one loss per device");

  std::cout << "data_parallel_step: all checks passed\n";
  return 0;
}
