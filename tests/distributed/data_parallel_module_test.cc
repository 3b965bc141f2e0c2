// DataParallelModule: the data-parallel sharding, batches placed as zero-copy views of the leading
// axis (also on a hybrid data x model mesh, where the model replicas view the same rows), and model
// state placed as one private copy per device, replicated or split by a per-key PartitionSpec.
#include "datarax/distributed/data_parallel_module.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "datarax/error.h"
#include "datarax/pmap.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax::distributed {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

// f32 array of `shape` with value = linear index + offset.
Array iota(Shape shape, float offset = 0.0f) {
  std::vector<float> values(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) + offset;
  return Array::from_values<float>(std::move(shape), std::move(values));
}

const std::byte* address(const Array& a) { return static_cast<const std::byte*>(a.raw()); }

// A batch of B examples: [B, 3] inputs and [B] int labels.
Tree make_batch(std::int64_t b) {
  std::vector<std::int32_t> labels(static_cast<std::size_t>(b));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i * 3);
  return Tree{{"inputs", iota(Shape{b, 3})}, {"labels", Array::from_vector<std::int32_t>(labels)}};
}

Tree make_state() {
  return Tree{{"params/kernel", iota(Shape{3, 8})},
              {"params/bias", iota(Shape{8}, 100.0f)},
              {"opt/step", Array::scalar<std::int64_t>(7)}};
}

TEST(DataParallelModuleTest, CreateShardingSplitsTheLeadingAxisOverData) {
  const DataParallelModule dp;
  for (int n = 1; n <= 8; ++n) {
    const Mesh mesh(test::first_devices(n), {{"data", n}});
    EXPECT_EQ(dp.create_data_parallel_sharding(mesh), NamedSharding(mesh, PartitionSpec{"data"})) << n;
  }
  const Mesh hybrid(test::first_devices(8), {{"data", 2}, {"model", 4}});
  const NamedSharding sharding = dp.create_data_parallel_sharding(hybrid);
  EXPECT_EQ(sharding, NamedSharding(hybrid, PartitionSpec{"data"}));
  EXPECT_EQ(sharding.replication_factor(), 4);

  // Another axis name.
  const Mesh batch_mesh(test::first_devices(4), {{"batch", 4}});
  EXPECT_EQ(dp.create_data_parallel_sharding(batch_mesh, "batch"),
            NamedSharding(batch_mesh, PartitionSpec{"batch"}));
  const Mesh model_first(test::first_devices(4), {{"model", 2}, {"replica", 2}});
  EXPECT_EQ(dp.create_data_parallel_sharding(model_first, "replica"),
            NamedSharding(model_first, PartitionSpec{"replica"}));
}

TEST(DataParallelModuleTest, CreateShardingWithoutDataAxisListsAxes) {
  const DataParallelModule dp;
  const Mesh mesh(test::first_devices(4), {{"batch", 2}, {"model", 2}});
  EXPECT_THAT([&] { (void)dp.create_data_parallel_sharding(mesh); },
              ThrowsMessage<InvalidArgumentError>(AllOf(HasSubstr("create_data_parallel_sharding"),
                                                        HasSubstr("\"data\""), HasSubstr("(batch, model)"))));
  EXPECT_THAT([&] { (void)dp.create_data_parallel_sharding(mesh, "replica"); },
              ThrowsMessage<InvalidArgumentError>(AllOf(HasSubstr("\"replica\""), HasSubstr("(batch, model)"))));
}

// Device k of a data=n mesh views rows [k B/n, (k+1) B/n) of every leaf, at the address of its
// first row in the batch's own buffer.
TEST(DataParallelModuleTest, ShardBatchGivesViewsOnOneDimensionalMeshes) {
  const DataParallelModule dp;
  for (int n = 1; n <= 8; ++n) {
    SCOPED_TRACE("data=" + std::to_string(n));
    const std::int64_t rows = 2;  // per device
    const Tree batch = make_batch(rows * n);
    const Mesh mesh(test::first_devices(n), {{"data", n}});
    const ShardedTree st = dp.shard_batch(batch, dp.create_data_parallel_sharding(mesh));
    for (const auto& [key, leaf] : batch) {
      const ShardedArray& sharded = st.at(key);
      const std::size_t row_bytes = static_cast<std::size_t>(leaf.shape().row_numel()) * leaf.itemsize();
      for (int k = 0; k < n; ++k) {
        const Shard& s = sharded.shards()[static_cast<std::size_t>(k)];
        EXPECT_EQ(s.device, mesh.devices()[static_cast<std::size_t>(k)]);
        EXPECT_TRUE(s.data.shares_buffer_with(leaf)) << key << " shard " << k;
        EXPECT_EQ(address(s.data), address(leaf) + static_cast<std::size_t>(k * rows) * row_bytes)
            << key << " shard " << k;
        EXPECT_EQ(s.data.shape(), leaf.shape().with_leading(rows)) << key;
      }
    }
    EXPECT_EQ(st.at("labels").shards().back().data.at<std::int32_t>({1}), (rows * n - 1) * 3);
    EXPECT_TRUE(bitwise_equal(st.gather(), batch));

    // The single-array overload places the same way.
    const ShardedArray one = dp.shard_batch(batch.at("inputs"), dp.create_data_parallel_sharding(mesh));
    EXPECT_EQ(address(one.shards().back().data),
              address(batch.at("inputs")) + static_cast<std::size_t>((n - 1) * rows * 3) * sizeof(float));
  }
}

// data=2, model=4: device (d, m) = devices()[4d + m] views rows [4d, 4d + 4) of an 8-row batch;
// the four model replicas of a data block are views of the very same rows.
TEST(DataParallelModuleTest, ShardBatchOnHybridMeshReplicatesOverModel) {
  const DataParallelModule dp;
  const Mesh mesh(test::first_devices(8), {{"data", 2}, {"model", 4}});
  const Tree batch = make_batch(8);
  const ShardedTree st = dp.shard_batch(batch, dp.create_data_parallel_sharding(mesh));
  const Array& inputs = batch.at("inputs");
  const std::size_t row_bytes = 3 * sizeof(float);
  for (int d = 0; d < 2; ++d) {
    for (int m = 0; m < 4; ++m) {
      const Device& device = mesh.devices()[static_cast<std::size_t>(4 * d + m)];
      SCOPED_TRACE(device.to_string());
      const Array& block = st.at("inputs").shard_for(device);
      EXPECT_TRUE(block.shares_buffer_with(inputs));
      EXPECT_EQ(address(block), address(inputs) + static_cast<std::size_t>(4 * d) * row_bytes);
      EXPECT_EQ(block.shape(), Shape({4, 3}));
      EXPECT_EQ(st.at("inputs").shards()[static_cast<std::size_t>(4 * d + m)].index,
                (std::vector<IndexRange>{{4 * d, 4 * d + 4}, {0, 3}}));
      const Tree local = st.local_tree(device);
      EXPECT_EQ(local.at("labels").at<std::int32_t>({0}), 4 * d * 3);
    }
  }
  EXPECT_TRUE(bitwise_equal(st.gather(), batch));
}

TEST(DataParallelModuleTest, ShardBatchNonDivisibleNamesKeyPath) {
  const DataParallelModule dp;
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  const NamedSharding sharding = dp.create_data_parallel_sharding(mesh);
  EXPECT_THAT([&] { (void)dp.shard_batch(make_batch(10), sharding); },
              ThrowsMessage<InvalidArgumentError>(HasSubstr(
                  "shard_batch: dimension 0 of \"inputs\" has size 10, not divisible by mesh axis "
                  "\"data\" of size 4")));
  Tree nested = make_batch(8);
  nested.set("extra/weights", Array::zeros(Shape{6}));
  EXPECT_THAT([&] { (void)dp.shard_batch(nested, sharding); },
              ThrowsMessage<InvalidArgumentError>(HasSubstr(
                  "shard_batch: dimension 0 of \"extra/weights\" has size 6, not divisible by mesh "
                  "axis \"data\" of size 4")));
  EXPECT_THAT([&] { (void)dp.shard_batch(Array::zeros(Shape{5, 2}), sharding); },
              ThrowsMessage<InvalidArgumentError>(
                  AllOf(HasSubstr("shard_batch: dimension 0"), HasSubstr("size 5"), HasSubstr("\"data\" of size 4"))));
}

// Replicated state: every device holds the whole leaf in a buffer of its own.
TEST(DataParallelModuleTest, ShardModelStateReplicatesPrivateCopies) {
  const DataParallelModule dp;
  const Tree state = make_state();
  for (const Mesh& mesh : {Mesh(test::first_devices(5), {{"data", 5}}),
                           Mesh(test::first_devices(8), {{"data", 2}, {"model", 4}})}) {
    SCOPED_TRACE(mesh.to_string());
    const ShardedTree st = dp.shard_model_state(state, mesh);
    ASSERT_EQ(st.keys(), state.keys());
    for (const auto& [key, leaf] : state) {
      const ShardedArray& sharded = st.at(key);
      EXPECT_EQ(sharded.sharding(), NamedSharding(mesh, PartitionSpec{})) << key;
      const auto& shards = sharded.shards();
      ASSERT_EQ(static_cast<int>(shards.size()), mesh.size());
      for (std::size_t k = 0; k < shards.size(); ++k) {
        EXPECT_EQ(shards[k].device, mesh.devices()[k]);
        EXPECT_EQ(shards[k].data.device(), mesh.devices()[k]);
        EXPECT_TRUE(bitwise_equal(shards[k].data, leaf)) << key << " shard " << k;
        EXPECT_FALSE(shards[k].data.shares_buffer_with(leaf)) << key << " shard " << k;
        for (std::size_t l = 0; l < k; ++l)
          EXPECT_FALSE(shards[k].data.shares_buffer_with(shards[l].data))
              << key << " shards " << l << " and " << k;
      }
    }
  }
}

// With a spec for the kernel ([3, 8] split along model=4 on dim 1), device (d, m) holds columns
// [2m, 2m + 2) as its own copy; the other leaves stay replicated.
TEST(DataParallelModuleTest, ShardModelStateWithSpecsSplitsThatLeaf) {
  const DataParallelModule dp;
  const Tree state = make_state();
  const Mesh mesh(test::first_devices(8), {{"data", 2}, {"model", 4}});
  const ShardedTree st =
      dp.shard_model_state(state, mesh, {{"params/kernel", PartitionSpec{std::nullopt, "model"}}});
  const ShardedArray& kernel = st.at("params/kernel");
  EXPECT_EQ(kernel.sharding(), NamedSharding(mesh, PartitionSpec{std::nullopt, "model"}));
  for (int d = 0; d < 2; ++d) {
    for (int m = 0; m < 4; ++m) {
      const std::size_t k = static_cast<std::size_t>(4 * d + m);
      SCOPED_TRACE("device (" + std::to_string(d) + ", " + std::to_string(m) + ")");
      const Shard& s = kernel.shards()[k];
      EXPECT_EQ(s.index, (std::vector<IndexRange>{{0, 3}, {2 * m, 2 * m + 2}}));
      ASSERT_EQ(s.data.shape(), Shape({3, 2}));
      for (std::int64_t r = 0; r < 3; ++r)
        for (std::int64_t c = 0; c < 2; ++c)
          EXPECT_EQ(s.data.at<float>({r, c}), static_cast<float>(r * 8 + 2 * m + c));
      EXPECT_FALSE(s.data.shares_buffer_with(state.at("params/kernel")));
      for (std::size_t l = 0; l < k; ++l)
        EXPECT_FALSE(s.data.shares_buffer_with(kernel.shards()[l].data)) << "shard " << l;
    }
  }
  EXPECT_TRUE(bitwise_equal(kernel.gather(), state.at("params/kernel")));
  for (const char* key : {"params/bias", "opt/step"}) {
    EXPECT_TRUE(st.at(key).sharding().is_fully_replicated()) << key;
    for (const Shard& s : st.at(key).shards()) EXPECT_TRUE(bitwise_equal(s.data, state.at(key))) << key;
  }
}

TEST(DataParallelModuleTest, ShardModelStateSpecErrorsNameTheKey) {
  const DataParallelModule dp;
  const Tree state = make_state();
  const Mesh mesh(test::first_devices(8), {{"data", 2}, {"model", 4}});
  EXPECT_THAT([&] { (void)dp.shard_model_state(state, mesh, {{"params/missing", PartitionSpec{"model"}}}); },
              ThrowsMessage<KeyError>(AllOf(HasSubstr("shard_model_state"), HasSubstr("\"params/missing\""),
                                            HasSubstr("opt/step, params/bias, params/kernel"))));
  // A spec that does not divide its leaf: 3 rows over model=4.
  EXPECT_THAT([&] { (void)dp.shard_model_state(state, mesh, {{"params/kernel", PartitionSpec{"model"}}}); },
              ThrowsMessage<InvalidArgumentError>(HasSubstr(
                  "shard_model_state: dimension 0 of \"params/kernel\" has size 3, not divisible by "
                  "mesh axis \"model\" of size 4")));
  // A spec naming an axis the mesh lacks.
  EXPECT_THAT([&] { (void)dp.shard_model_state(state, mesh, {{"params/bias", PartitionSpec{"tensor"}}}); },
              ThrowsMessage<InvalidArgumentError>(AllOf(HasSubstr("\"tensor\""), HasSubstr("(data, model)"))));
}

// A data::Loader batch carries "count", a scalar (the global batch's real examples): it has no
// batch axis, so shard_batch replicates it while splitting the rest.
TEST(DataParallelModuleTest, ShardBatchReplicatesScalarLeaves) {
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  DataParallelModule dp;
  Tree batch = make_batch(8);
  batch.set("count", Array::scalar<float>(7.0f));
  const ShardedTree sharded = dp.shard_batch(batch, dp.create_data_parallel_sharding(mesh));
  EXPECT_EQ(sharded.at("count").sharding().spec(), PartitionSpec{});
  EXPECT_EQ(sharded.at("inputs").sharding().spec(), PartitionSpec{"data"});
  for (const Device& d : mesh.devices()) {
    EXPECT_EQ(sharded.at("count").shard_for(d).item<float>(), 7.0f);
    EXPECT_EQ(sharded.at("inputs").shard_for(d).shape(), (Shape{2, 3}));
  }
}

// Inside the seed's pmap(..., "batch"), all_reduce_gradients without an axis reduces over "batch"
// (the function's one axis); with an axis the function lacks, the error names the call made.
TEST(DataParallelModuleTest, AllReduceGradientsDefaultsToTheEnclosingFunctionsOneAxis) {
  const int n = 4;
  const Mesh mesh(test::first_devices(n), {{"batch", n}});
  DataParallelModule dp;
  const ShardedTree placed = dp.shard_batch(Tree{{"x", iota(Shape{n})}}, NamedSharding(mesh, PartitionSpec{"batch"}));
  const ShardedTree out = pmap([&](const Tree& local) { return dp.all_reduce_gradients(Tree{{"g", local.at("x")}}); },
                               "batch", {.output = PmapOutput::replicated})(placed);
  // mean of 0, 1, 2, 3
  for (const Device& d : mesh.devices()) EXPECT_EQ(out.at("g").shard_for(d).data<float>()[0], 1.5f);
  EXPECT_THAT(test::error_of([&] {
                pmap([&](const Tree& local) { return dp.all_reduce_gradients(Tree{{"g", local.at("x")}}, "mean", "data"); },
                     "batch")(placed);
              }),
              HasSubstr("all_reduce_gradients: "));
}

}  // namespace
}  // namespace datarax::distributed
