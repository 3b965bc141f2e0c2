// The device list, meshes, process-local batches, cross-process gather and the seed's modules
// under mpirun (2 or 3 processes of 1 or 2 devices each). Expected values are formulas over the
// global device ids; every process checks what it holds.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "datarax/collectives.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/distributed/device_mesh_module.h"
#include "datarax/distributed/distributed_metrics_module.h"
#include "datarax/device_discovery.h"
#include "datarax/sharded_array.h"
#include "datarax/spmd.h"

namespace datarax {
namespace {

using distributed::DataParallelModule;
using distributed::DeviceMeshModule;
using distributed::DistributedMetricsModule;

class MpiDistributed : public ::testing::Test {
 protected:
  void SetUp() override {
    initialize();
    ASSERT_GE(process_count(), 2) << "run this program under mpirun with 2 or more processes";
  }
  int p() const { return process_count(); }
  int l() const { return local_device_count(); }
};

TEST_F(MpiDistributed, DevicesAreEveryProcesssInProcessOrder) {
  ASSERT_EQ(device_count(), p() * l());
  for (int i = 0; i < device_count(); ++i) {
    const Device& d = devices()[static_cast<std::size_t>(i)];
    EXPECT_EQ(d.id, i);
    EXPECT_EQ(d.process_index, i / l());
    EXPECT_EQ(d.local_index, i % l());
  }
  ASSERT_EQ(local_device_count(), l());
  for (const Device& d : local_devices()) EXPECT_EQ(d.process_index, process_index());
}

TEST_F(MpiDistributed, HybridMeshKeepsModelInsideAProcess) {
  const DeviceMeshModule module;
  const Mesh mesh = module.create_hybrid_mesh(p(), l());
  for (const auto& group : mesh.groups({"model"}))
    for (const Device& d : group) EXPECT_EQ(d.process_index, group.front().process_index);
  for (const auto& group : mesh.groups({"data"})) {
    for (std::size_t k = 0; k < group.size(); ++k) EXPECT_EQ(group[k].process_index, static_cast<int>(k));
  }
  const auto info = module.get_mesh_info(mesh);
  EXPECT_EQ(info.process_count, p());
  EXPECT_EQ(info.devices_per_process, l());
  EXPECT_EQ(info.total_devices, p() * l());
}

// Each process passes its rows of the global batch; the shards are views of them, the global shape
// is the whole batch, and gather() (collective) gives every process the whole batch.
TEST_F(MpiDistributed, ShardBatchTakesProcessLocalRowsAndGatherCrossesProcesses) {
  const DataParallelModule dp;
  const Mesh mesh = DeviceMeshModule().create_data_parallel_mesh();
  const NamedSharding sharding = dp.create_data_parallel_sharding(mesh);
  const std::int64_t rows_per_device = 3, cols = 4;
  const std::int64_t local_rows = rows_per_device * l();
  // Global row g holds g * 10 + column.
  std::vector<float> values;
  const std::int64_t first = process_index() * local_rows;
  for (std::int64_t r = 0; r < local_rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) values.push_back(static_cast<float>((first + r) * 10 + c));
  const Array local = Array::from_values<float>(Shape({local_rows, cols}), values);
  const ShardedArray sharded = dp.shard_batch(local, sharding);
  EXPECT_EQ(sharded.shape(), Shape({local_rows * p(), cols}));
  for (const Shard& s : sharded.shards()) {
    EXPECT_TRUE(s.data.shares_buffer_with(local)) << s.device;
    EXPECT_EQ(s.index[0].start, s.device.id * rows_per_device);
    EXPECT_EQ(s.data.data<float>()[0], static_cast<float>(s.device.id * rows_per_device * 10));
  }
  const Array whole = sharded.gather();
  ASSERT_EQ(whole.shape(), Shape({local_rows * p(), cols}));
  for (std::int64_t g = 0; g < local_rows * p(); ++g)
    for (std::int64_t c = 0; c < cols; ++c)
      EXPECT_EQ((whole.at<float>({g, c})), static_cast<float>(g * 10 + c));
}

TEST_F(MpiDistributed, ShardBatchRejectsRowsThatDoNotSplitOverThisProcesssDevices) {
  if (l() < 2) GTEST_SKIP() << "needs 2 or more devices per process";
  const DataParallelModule dp;
  const Mesh mesh = DeviceMeshModule().create_data_parallel_mesh();
  const Array local = Array::zeros(Shape({static_cast<std::int64_t>(l()) + 1, 2}));
  try {
    dp.shard_batch(local, dp.create_data_parallel_sharding(mesh));
    FAIL() << "expected InvalidArgumentError";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("shard_batch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not divisible"), std::string::npos) << e.what();
  }
}

// The seed's modules give over processes what they give within one: inside SPMD (collectives) and
// outside on per-device values (collective gather).
TEST_F(MpiDistributed, MetricsAndGradientsReduceOverEveryProcess) {
  const Mesh mesh = DeviceMeshModule().create_data_parallel_mesh();
  const int n = mesh.size();
  double id_sum = 0;
  for (int i = 0; i < n; ++i) id_sum += i;
  const DistributedMetricsModule metrics;
  const DataParallelModule dp;
  std::vector<Tree> per_device(static_cast<std::size_t>(n));
  run_spmd(mesh, [&](const Device& d) {
    const Tree m{{"loss", Array::scalar<float>(static_cast<float>(d.id), d)},
                 {"correct", Array::scalar<std::int64_t>(d.id * 2, d)}};
    const Tree r = metrics.reduce_custom(m, {{"loss", "mean"}, {"correct", "sum"}}, "data");
    EXPECT_FLOAT_EQ(r.at("loss").item<float>(), static_cast<float>(id_sum / n));
    EXPECT_EQ(r.at("correct").item<std::int64_t>(), static_cast<std::int64_t>(2 * id_sum));
    const auto collected = metrics.collect_from_devices(m, "data");
    ASSERT_EQ(collected.at("loss").size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(collected.at("loss")[static_cast<std::size_t>(i)].item<float>(), static_cast<float>(i));
    const Tree g = dp.all_reduce_gradients(Tree{{"w", Array::full(Shape({5}), d.id + 1.0, DType::f32, d)}}, "mean", "data");
    EXPECT_FLOAT_EQ(g.at("w").data<float>()[4], static_cast<float>(id_sum / n + 1.0));
  });
  // Outside SPMD: a per-device ShardedTree (one stacked entry per device) over every process.
  const NamedSharding stacked(mesh, PartitionSpec{"data"});
  std::vector<float> mine;
  for (const Device& d : mesh.devices())
    if (d.process_index == process_index()) mine.push_back(static_cast<float>(d.id));
  ShardedTree per{};
  per.set("loss", ShardedArray::from_process_local(Array::from_vector<float>(mine), stacked));
  const Tree mean = metrics.reduce_mean(per);
  EXPECT_FLOAT_EQ(mean.at("loss").item<float>(), static_cast<float>(id_sum / n));
  const Tree mx = metrics.reduce_max(per);
  EXPECT_FLOAT_EQ(mx.at("loss").item<float>(), static_cast<float>(n - 1));
}

}  // namespace
}  // namespace datarax
