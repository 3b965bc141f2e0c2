// ShardedArray placement: which shards are views of the source (zero copy) and which are copies.
// With Placement::view_if_possible a block made of whole rows (a split along the leading axis only)
// is a view of the source, checked by buffer identity and by the address of its first element;
// any other block is a copy; Placement::copy gives every device a buffer of its own. Also the 0-d
// (scalar) case, which can only be replicated.
#include "datarax/sharded_array.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "datarax/error.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;

// f32 array of `shape` with value = linear index.
Array iota(Shape shape) {
  std::vector<float> values(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  return Array::from_values<float>(std::move(shape), std::move(values));
}

const std::byte* address(const Array& a) { return static_cast<const std::byte*>(a.raw()); }

TEST(ShardedArrayPlacementTest, LeadingSplitIsAViewOfTheSource) {
  // Rows [2k, 2k + 2) of an [8, 3] array on device k of a 4-device mesh.
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  Array x = iota(Shape{8, 3});
  const ShardedArray sa = ShardedArray::shard(x, NamedSharding(mesh, PartitionSpec{"data"}));
  ASSERT_EQ(sa.shards().size(), 4u);
  const std::size_t row_bytes = 3 * sizeof(float);
  for (std::size_t k = 0; k < 4; ++k) {
    SCOPED_TRACE("shard " + std::to_string(k));
    const Shard& s = sa.shards()[k];
    EXPECT_TRUE(s.data.shares_buffer_with(x));
    EXPECT_EQ(address(s.data), address(x) + 2 * k * row_bytes);
    EXPECT_EQ(s.data.shape(), Shape({2, 3}));
    EXPECT_EQ(s.data.device(), mesh.devices()[k]);
  }
  // Zero copy: a write to the source shows through the shard.
  x.at<float>({5, 1}) = -1.0f;
  EXPECT_EQ(sa.shards()[2].data.at<float>({1, 1}), -1.0f);
}

TEST(ShardedArrayPlacementTest, LeadingSplitOverSeveralAxesAndReplicasAreViews) {
  // data=2, model=2. Over (data, model): device (d, m) views rows of block 2d + m. Over data alone:
  // the two model replicas of a block view the same rows.
  const Mesh mesh(test::first_devices(4), {{"data", 2}, {"model", 2}});
  const Array x = iota(Shape{8, 2, 3});
  const std::size_t row_bytes = 2 * 3 * sizeof(float);
  const ShardedArray tuple = ShardedArray::shard(x, NamedSharding(mesh, PartitionSpec{{"data", "model"}}));
  const ShardedArray data = ShardedArray::shard(x, NamedSharding(mesh, PartitionSpec{"data"}));
  for (std::size_t d = 0; d < 2; ++d) {
    for (std::size_t m = 0; m < 2; ++m) {
      const std::size_t k = d * 2 + m;
      SCOPED_TRACE("device (" + std::to_string(d) + ", " + std::to_string(m) + ")");
      EXPECT_TRUE(tuple.shards()[k].data.shares_buffer_with(x));
      EXPECT_EQ(address(tuple.shards()[k].data), address(x) + (2 * d + m) * 2 * row_bytes);
      EXPECT_TRUE(data.shards()[k].data.shares_buffer_with(x));
      EXPECT_EQ(address(data.shards()[k].data), address(x) + d * 4 * row_bytes);
    }
  }
}

TEST(ShardedArrayPlacementTest, SplitOverSizeOneAxisStillAView) {
  // A non-leading dimension "split" over an axis of size 1 is whole: the block is still whole rows.
  const Mesh mesh(test::first_devices(5), {{"data", 1}, {"model", 5}});
  const Array x = iota(Shape{10, 3});
  const ShardedArray sa = ShardedArray::shard(x, NamedSharding(mesh, PartitionSpec{"model", "data"}));
  for (std::size_t k = 0; k < 5; ++k) {
    EXPECT_TRUE(sa.shards()[k].data.shares_buffer_with(x)) << "shard " << k;
    EXPECT_EQ(address(sa.shards()[k].data), address(x) + k * 2 * 3 * sizeof(float));
  }
}

TEST(ShardedArrayPlacementTest, NonLeadingSplitIsACopy) {
  // Columns [2k, 2k + 2) of a [3, 8] array: not contiguous, so copied.
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  for (const PartitionSpec& spec : {PartitionSpec{std::nullopt, "data"}, PartitionSpec{std::nullopt, {"data"}}}) {
    SCOPED_TRACE(spec.to_string());
    Array x = iota(Shape{3, 8});
    const ShardedArray sa = ShardedArray::shard(x, NamedSharding(mesh, spec));
    for (std::size_t k = 0; k < 4; ++k) {
      const Array& block = sa.shards()[k].data;
      EXPECT_FALSE(block.shares_buffer_with(x)) << "shard " << k;
      for (std::int64_t r = 0; r < 3; ++r)
        for (std::int64_t c = 0; c < 2; ++c)
          EXPECT_EQ(block.at<float>({r, c}), static_cast<float>(r * 8 + 2 * static_cast<std::int64_t>(k) + c));
    }
    // A copy: a later write to the source does not show.
    const float before = sa.shards()[1].data.at<float>({0, 0});
    x.at<float>({0, 2}) += 100.0f;
    EXPECT_EQ(sa.shards()[1].data.at<float>({0, 0}), before);
  }
}

TEST(ShardedArrayPlacementTest, CopyPlacementSharesNothing) {
  const Mesh mesh(test::first_devices(6), {{"data", 2}, {"model", 3}});
  const Array x = iota(Shape{6, 4});
  for (const PartitionSpec& spec : {PartitionSpec{}, PartitionSpec{"data"}, PartitionSpec{"model"},
                                    PartitionSpec{{"data", "model"}}}) {
    SCOPED_TRACE(spec.to_string());
    const ShardedArray sa =
        ShardedArray::shard(x, NamedSharding(mesh, spec), {.placement = Placement::copy});
    ASSERT_EQ(sa.shards().size(), 6u);
    for (std::size_t k = 0; k < 6; ++k) {
      EXPECT_FALSE(sa.shards()[k].data.shares_buffer_with(x)) << "shard " << k;
      for (std::size_t l = 0; l < k; ++l)
        EXPECT_FALSE(sa.shards()[k].data.shares_buffer_with(sa.shards()[l].data))
            << "shards " << l << " and " << k;
    }
    EXPECT_TRUE(bitwise_equal(sa.gather(), x));
  }
}

TEST(ShardedArrayPlacementTest, ScalarIsReplicated) {
  const Mesh mesh(test::first_devices(4), {{"data", 2}, {"model", 2}});
  const Array x = Array::scalar<double>(3.25);
  const NamedSharding sharding(mesh, PartitionSpec{});
  EXPECT_TRUE(sharding.is_fully_replicated());
  EXPECT_EQ(sharding.shard_shape(Shape{}), Shape{});
  for (Placement placement : {Placement::view_if_possible, Placement::copy}) {
    SCOPED_TRACE(std::string(to_string(placement)));
    const ShardedArray sa = ShardedArray::shard(x, sharding, {.placement = placement});
    ASSERT_EQ(sa.shards().size(), 4u);
    for (std::size_t k = 0; k < 4; ++k) {
      const Shard& s = sa.shards()[k];
      EXPECT_EQ(s.device, mesh.devices()[k]);
      EXPECT_EQ(s.data.device(), mesh.devices()[k]);
      EXPECT_EQ(s.data.shape(), Shape{});
      EXPECT_TRUE(s.index.empty());
      EXPECT_EQ(s.data.item<double>(), 3.25);
      EXPECT_EQ(s.data.shares_buffer_with(x), placement == Placement::view_if_possible);
    }
    EXPECT_TRUE(bitwise_equal(sa.gather(), x));
    EXPECT_TRUE(bitwise_equal(sa.reshard(sharding, Placement::copy).gather(), x));
  }
  // A scalar has no dimension to split.
  EXPECT_THAT([&] { (void)ShardedArray::shard(x, NamedSharding(mesh, PartitionSpec{"data"})); },
              ::testing::ThrowsMessage<InvalidArgumentError>(HasSubstr("rank 0")));
}

TEST(ShardedArrayPlacementTest, PlacementToString) {
  EXPECT_EQ(to_string(Placement::view_if_possible), "view_if_possible");
  EXPECT_EQ(to_string(Placement::copy), "copy");
}

}  // namespace
}  // namespace datarax
