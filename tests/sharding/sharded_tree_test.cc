// ShardedTree: a multi-leaf tree sharded leaf by leaf, gathered back, reshard, the per-device tree
// an SPMD function sees (local_tree), and lookups by key path.
#include "datarax/sharded_tree.h"

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

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A batch-like tree whose leaves all have a leading dimension of 12, of several dtypes and ranks.
// Leaf values are formulas of the element's indices, so a block's expected contents are known.
Tree make_batch() {
  std::vector<float> images(12 * 2 * 3);
  for (std::size_t i = 0; i < images.size(); ++i) images[i] = static_cast<float>(i) + 0.5f;
  std::vector<std::int32_t> labels(12);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(100 + i);
  std::vector<std::uint8_t> mask(12 * 5);
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = static_cast<std::uint8_t>(i % 7);
  return Tree{{"inputs/images", Array::from_values<float>(Shape{12, 2, 3}, images)},
              {"labels", Array::from_vector<std::int32_t>(labels)},
              {"inputs/mask", Array::from_values<std::uint8_t>(Shape{12, 5}, mask)}};
}

TEST(ShardedTreeTest, ShardAndGatherEveryLeaf) {
  const Tree batch = make_batch();
  for (int n : {1, 2, 3, 4, 6}) {
    SCOPED_TRACE("data=" + std::to_string(n));
    const Mesh mesh(test::first_devices(n), {{"data", n}});
    const NamedSharding sharding(mesh, PartitionSpec{"data"});
    const ShardedTree st = ShardedTree::shard(batch, sharding);
    // Keys sorted, as in Tree.
    EXPECT_THAT(st.keys(), ElementsAre("inputs/images", "inputs/mask", "labels"));
    EXPECT_EQ(st.size(), 3u);
    EXPECT_FALSE(st.empty());
    for (const auto& [key, leaf] : st) {
      EXPECT_EQ(leaf.sharding(), sharding) << key;
      EXPECT_EQ(leaf.shape(), batch.at(key).shape()) << key;
      EXPECT_EQ(leaf.dtype(), batch.at(key).dtype()) << key;
    }
    EXPECT_TRUE(bitwise_equal(st.gather(), batch));

    // Reshard every leaf to replicated copies, and back to split along data.
    const ShardedTree replicated = st.reshard(NamedSharding(mesh, PartitionSpec{}), Placement::copy);
    EXPECT_TRUE(replicated.at("labels").sharding().is_fully_replicated());
    EXPECT_TRUE(bitwise_equal(replicated.at("labels").shards().back().data, batch.at("labels")));
    EXPECT_TRUE(bitwise_equal(replicated.gather(), batch));
    EXPECT_TRUE(bitwise_equal(replicated.reshard(sharding).gather(), batch));
  }
}

TEST(ShardedTreeTest, LocalTreeIsTheDevicesBlocks) {
  // data=2, model=2 over the leading axis of 12: device (d, m) holds rows [6d, 6d + 6) of every
  // leaf, the same rows for both m.
  const Tree batch = make_batch();
  const Mesh mesh(test::first_devices(4), {{"data", 2}, {"model", 2}});
  const ShardedTree st = ShardedTree::shard(batch, NamedSharding(mesh, PartitionSpec{"data"}));
  for (int d = 0; d < 2; ++d) {
    for (int m = 0; m < 2; ++m) {
      const Device& device = mesh.devices()[static_cast<std::size_t>(d * 2 + m)];
      SCOPED_TRACE(device.to_string());
      const Tree local = st.local_tree(device);
      ASSERT_EQ(local.keys(), batch.keys());
      for (const auto& [key, leaf] : local) {
        EXPECT_EQ(leaf.device(), device) << key;
        EXPECT_TRUE(leaf.shares_buffer_with(st.at(key).shard_for(device))) << key;
      }
      const Array& images = local.at("inputs/images");
      ASSERT_EQ(images.shape(), Shape({6, 2, 3}));
      for (std::int64_t r = 0; r < 6; ++r)
        for (std::int64_t i = 0; i < 2; ++i)
          for (std::int64_t j = 0; j < 3; ++j)
            EXPECT_EQ(images.at<float>({r, i, j}), static_cast<float>(((6 * d + r) * 2 + i) * 3 + j) + 0.5f);
      const Array& labels = local.at("labels");
      ASSERT_EQ(labels.shape(), Shape({6}));
      for (std::int64_t r = 0; r < 6; ++r) EXPECT_EQ(labels.at<std::int32_t>({r}), 100 + 6 * d + r);
      const Array& mask = local.at("inputs/mask");
      ASSERT_EQ(mask.shape(), Shape({6, 5}));
      for (std::int64_t r = 0; r < 6; ++r)
        for (std::int64_t c = 0; c < 5; ++c)
          EXPECT_EQ(mask.at<std::uint8_t>({r, c}), ((6 * d + r) * 5 + c) % 7);
    }
  }
  // A device outside the mesh holds nothing.
  EXPECT_THAT([&] { (void)st.local_tree(test::first_devices(8)[6]); },
              ::testing::ThrowsMessage<InvalidArgumentError>(HasSubstr("no shard on cpu:6")));
}

TEST(ShardedTreeTest, AtMissingKeyThrowsKeyErrorNamingIt) {
  const Mesh mesh(test::first_devices(2), {{"data", 2}});
  const ShardedTree st = ShardedTree::shard(make_batch(), NamedSharding(mesh, PartitionSpec{"data"}));
  EXPECT_TRUE(st.contains("labels"));
  EXPECT_FALSE(st.contains("inputs"));  // a prefix is not a key
  EXPECT_NO_THROW((void)st.at("inputs/mask"));
  for (const char* key : {"inputs", "params/kernel", "label"}) {
    SCOPED_TRACE(key);
    EXPECT_THAT([&] { (void)st.at(key); },
                ::testing::ThrowsMessage<KeyError>(
                    AllOf(HasSubstr("ShardedTree::at"), HasSubstr("\"" + std::string(key) + "\""),
                          HasSubstr("inputs/images, inputs/mask, labels"))));
  }
  EXPECT_THAT([] { (void)ShardedTree().at("x"); },
              ::testing::ThrowsMessage<KeyError>(AllOf(HasSubstr("\"x\""), HasSubstr("(none)"))));
}

TEST(ShardedTreeTest, NonDivisibleLeafNamesItsKeyPath) {
  // 12 rows divide by 4, but the mask leaf is given 10.
  Tree batch = make_batch();
  batch.set("inputs/mask", Array::zeros(Shape{10, 5}, DType::u8));
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  EXPECT_THAT([&] { (void)ShardedTree::shard(batch, NamedSharding(mesh, PartitionSpec{"data"})); },
              ::testing::ThrowsMessage<InvalidArgumentError>(
                  HasSubstr("dimension 0 of \"inputs/mask\" has size 10, not divisible by mesh axis "
                            "\"data\" of size 4")));
}

TEST(ShardedTreeTest, SetAndToString) {
  const Mesh mesh(test::first_devices(2), {{"data", 2}});
  const NamedSharding sharding(mesh, PartitionSpec{"data"});
  ShardedTree st;
  EXPECT_TRUE(st.empty());
  st.set("b/w", ShardedArray::shard(Array::zeros(Shape{2}), sharding));
  st.set("a", ShardedArray::shard(Array::zeros(Shape{4, 1}), sharding));
  EXPECT_THAT(st.keys(), ElementsAre("a", "b/w"));
  EXPECT_THAT(st.to_string(), AllOf(HasSubstr("a: ShardedArray(f32[4, 1]"), HasSubstr("b/w: ShardedArray(f32[2]")));
  EXPECT_THROW(st.set("bad//key", ShardedArray::shard(Array::zeros(Shape{2}), sharding)),
               InvalidArgumentError);
}

}  // namespace
}  // namespace datarax
