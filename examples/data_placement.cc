// Placing data on a mesh: the seed's "DataParallelModule" section, in C++.
//
// Data-parallel training runs the same step on every device, each on its own slice of the batch,
// with its own replica of the model. DataParallelModule puts the data there:
//   shard_batch        splits every leaf of a batch along its leading (batch) axis. On CPU devices
//                      the slices are views of the batch's buffers: nothing is copied.
//   shard_model_state  gives every device its own copy of every leaf of the model state, so that
//                      each device can update its replica in place without racing the others.
//
// Run: ./build/examples/data_placement   (the output is checked by the CTest test
// example_data_placement)
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "datarax/datarax.h"

namespace {

constexpr std::int64_t kBatchSize = 32;  // global batch: 4 examples per device on 8 devices
constexpr std::int64_t kFeatures = 784;  // a flattened 28 x 28 image
constexpr std::int64_t kHidden = 128;

datarax::Tree make_batch(std::int64_t batch_size);
datarax::Tree make_state();
void require(bool condition, const std::string& what);

}  // namespace

int main() {
  using datarax::Array;
  using datarax::Device;
  using datarax::Mesh;
  using datarax::NamedSharding;
  using datarax::PartitionSpec;
  using datarax::ShardedTree;
  using datarax::Tree;
  using datarax::distributed::DataParallelModule;
  using datarax::distributed::DeviceMeshModule;

  // Eight logical CPU devices, whatever the machine (see device_mesh.cc).
  datarax::initialize({.num_cpu_devices = 8});

  // --- The modules and the mesh ------------------------------------------------------------------
  DeviceMeshModule mesh_module;
  DataParallelModule dp_module;

  Mesh mesh = mesh_module.create_data_parallel_mesh();

  // The sharding: PartitionSpec{"data"} on this mesh, i.e. dimension 0 (the batch) is split over
  // the "data" axis, and any further dimensions are kept whole.
  NamedSharding sharding = dp_module.create_data_parallel_sharding(mesh);
  std::cout << "sharding: " << sharding << "\n";

  // --- Sharding a batch --------------------------------------------------------------------------
  // A batch is a Tree: key paths to arrays, all with the same leading dimension.
  Tree batch = make_batch(kBatchSize);
  std::cout << "batch: " << batch.to_string() << "\n";

  ShardedTree sharded_batch = dp_module.shard_batch(batch, sharding);

  // local_tree(device) is what that device's step function sees: 32 / 8 = 4 examples each.
  for (const Device& device : mesh.devices()) {
    Tree local = sharded_batch.local_tree(device);
    std::cout << "  " << device << ": inputs " << local.at("inputs").shape().to_string()
              << ", targets " << local.at("targets").shape().to_string() << "\n";
  }

  // The shards are views: they share the batch's buffers, so sharding costs no copy whatever the
  // batch size (bench/shard_batch measures it). The flip side: writes to the batch show through,
  // so a data loader must not refill a batch while a step still reads its shards.
  for (const auto& [key, leaf] : sharded_batch)
    for (const datarax::Shard& shard : leaf.shards())
      require(shard.data.shares_buffer_with(batch.at(key)),
              "the " + key + " shard on " + shard.device.to_string() + " is a view of the batch");

  // Gathering puts the blocks back together: the original batch, bit for bit.
  require(datarax::bitwise_equal(sharded_batch.gather(), batch),
          "gathering the sharded batch gives the original batch");
  std::cout << "shard_batch: " << sharded_batch.size()
            << " leaves, every shard a view; gather() == batch\n";

  // --- Sharding model state ----------------------------------------------------------------------
  // Parameters are replicated: every device holds all of them. Unlike the batch, each device gets
  // a copy of its own, because every device applies its optimizer update to its replica in place.
  Tree state = make_state();
  ShardedTree sharded_state = dp_module.shard_model_state(state, mesh);

  const datarax::ShardedArray& kernel = sharded_state.at("params/dense_0/kernel");
  std::cout << "state: " << kernel.shards().size() << " replicas of params/dense_0/kernel "
            << kernel.shards()[0].data.shape().to_string() << "\n";
  for (const datarax::Shard& shard : kernel.shards())
    require(!shard.data.shares_buffer_with(state.at("params/dense_0/kernel")),
            "the replica on " + shard.device.to_string() + " is a copy");

  // A replica changed on one device leaves the others, and the host state, as they were.
  Array replica_0 = kernel.shard_for(mesh.devices()[0]);  // an Array is a handle to the buffer
  replica_0.fill(0.0);
  require(datarax::bitwise_equal(kernel.shard_for(mesh.devices()[1]),
                                 state.at("params/dense_0/kernel")),
          "updating the replica on cpu:0 does not touch the one on cpu:1");
  std::cout << "shard_model_state: every device holds its own copy\n";

  // --- Data and model parallelism together -------------------------------------------------------
  // On a hybrid (data=2, model=4) mesh the same calls split the batch over "data" only: the four
  // devices of one model replica see the same 16 examples. A PartitionSpec per key path splits a
  // weight over "model" instead of replicating it: here the kernel's output columns.
  Mesh hybrid_mesh = mesh_module.create_hybrid_mesh(2, 4);
  NamedSharding hybrid_sharding = dp_module.create_data_parallel_sharding(hybrid_mesh);
  ShardedTree hybrid_batch = dp_module.shard_batch(batch, hybrid_sharding);
  ShardedTree hybrid_state = dp_module.shard_model_state(
      state, hybrid_mesh,
      {{"params/dense_0/kernel", PartitionSpec{std::nullopt, "model"}},
       {"params/dense_0/bias", PartitionSpec{"model"}}});

  const Device& device_5 = hybrid_mesh.device_at({1, 1});  // data=1, model=1
  Tree local_batch = hybrid_batch.local_tree(device_5);
  Tree local_state = hybrid_state.local_tree(device_5);
  std::cout << "hybrid " << device_5 << ": inputs " << local_batch.at("inputs").shape().to_string()
            << ", kernel " << local_state.at("params/dense_0/kernel").shape().to_string()
            << ", bias " << local_state.at("params/dense_0/bias").shape().to_string() << "\n";
  const datarax::Shape quarter_kernel{kFeatures, kHidden / 4};
  require(local_batch.at("inputs").shape() == datarax::Shape{16, kFeatures} &&
              local_state.at("params/dense_0/kernel").shape() == quarter_kernel,
          "on the hybrid mesh a device holds 16 examples and a quarter of the kernel");
  require(datarax::bitwise_equal(hybrid_state.gather(), state),
          "gathering the model-parallel state gives the original state");

  // --- Input that does not fit -------------------------------------------------------------------
  // Every device gets the same number of examples, so the batch size must divide by the data axis.
  // The error names the operation, the leaf, its size and the axis.
  try {
    dp_module.shard_batch(make_batch(30), sharding);
    require(false, "a batch of 30 on 8 devices throws");
  } catch (const datarax::InvalidArgumentError& e) {
    std::cout << "error: " << e.what() << "\n";
  }
  // A spec for a key the state does not have is a typo, not something to ignore.
  try {
    dp_module.shard_model_state(state, mesh, {{"params/dense_1/kernel", PartitionSpec{}}});
    require(false, "a spec for an unknown key throws");
  } catch (const datarax::KeyError& e) {
    std::cout << "error: " << e.what() << "\n";
  }

  std::cout << "data_placement: all checks passed\n";
  return 0;
}

namespace {

// inputs f32[batch, 784] and targets i32[batch], from formulas so that every value is known:
// inputs[i][j] = i + j / 1024 (exact in f32), targets[i] = i % 10.
datarax::Tree make_batch(std::int64_t batch_size) {
  datarax::Array inputs = datarax::Array::empty({batch_size, kFeatures}, datarax::DType::f32);
  auto x = inputs.data<float>();
  for (std::int64_t i = 0; i < batch_size; ++i)
    for (std::int64_t j = 0; j < kFeatures; ++j)
      x[static_cast<std::size_t>(i * kFeatures + j)] =
          static_cast<float>(i) + static_cast<float>(j) / 1024.0f;
  datarax::Array targets = datarax::Array::empty({batch_size}, datarax::DType::i32);
  auto y = targets.data<std::int32_t>();
  for (std::int64_t i = 0; i < batch_size; ++i)
    y[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % 10);
  return {{"inputs", inputs}, {"targets", targets}};
}

// One dense layer's parameters: kernel f32[784, 128], bias f32[128].
datarax::Tree make_state() {
  datarax::Array kernel = datarax::Array::empty({kFeatures, kHidden}, datarax::DType::f32);
  auto w = kernel.data<float>();
  for (std::size_t k = 0; k < w.size(); ++k) w[k] = static_cast<float>(k % 97) / 97.0f - 0.5f;
  return {{"params/dense_0/kernel", kernel},
          {"params/dense_0/bias", datarax::Array::full({kHidden}, 0.01)}};
}

void require(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "data_placement: FAILED: " << what << "\n";
  std::exit(1);
}

}  // namespace
