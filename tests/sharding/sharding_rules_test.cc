// ShardingRules: glob matching on key paths (against a naive recursive reference), first match
// wins, replication for unmatched leaves, every error naming key, rule, spec, shape and mesh; and
// padded shardings (fsdp_rules) placed and gathered back exactly.
#include "datarax/sharding_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "datarax/distributed/data_parallel_module.h"
#include "datarax/sharded_tree.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// The glob semantics written as plainly as possible: recursion over every way to match a star.
bool naive_glob(std::string_view p, std::string_view k) {
  if (p.empty()) return k.empty();
  if (p.substr(0, 2) == "**") {
    for (std::size_t n = 0; n <= k.size(); ++n)
      if (naive_glob(p.substr(2), k.substr(n))) return true;
    return false;
  }
  if (p[0] == '*') {
    for (std::size_t n = 0; n <= k.size(); ++n) {
      if (naive_glob(p.substr(1), k.substr(n))) return true;
      if (n < k.size() && k[n] == '/') return false;
    }
    return false;
  }
  if (k.empty()) return false;
  if (p[0] == '?' ? k[0] == '/' : p[0] != k[0]) return false;
  return naive_glob(p.substr(1), k.substr(1));
}

TEST(GlobMatch, Examples) {
  EXPECT_TRUE(glob_match("dense_*/kernel", "dense_0/kernel"));
  EXPECT_TRUE(glob_match("dense_*/kernel", "dense_12/kernel"));
  EXPECT_FALSE(glob_match("dense_*/kernel", "dense_0/bias"));
  EXPECT_FALSE(glob_match("dense_*", "dense_0/kernel"));  // * stays in its segment
  EXPECT_TRUE(glob_match("**", "params/dense_0/kernel"));
  EXPECT_TRUE(glob_match("**/kernel", "params/dense_0/kernel"));
  EXPECT_TRUE(glob_match("**/a*", "z/a/a"));  // ** takes "z/a", * takes nothing
  EXPECT_TRUE(glob_match("dense_?/bias", "dense_3/bias"));
  EXPECT_FALSE(glob_match("dense_?/bias", "dense_10/bias"));
  EXPECT_FALSE(glob_match("?", "/"));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("a", ""));
}

// Every pattern of up to 5 symbols over {a, /, *, ?} against every key of up to 5 over {a, b, /}:
// the fast matcher agrees with the naive one.
TEST(GlobMatch, AgreesWithTheNaiveReferenceExhaustively) {
  std::vector<std::string> patterns{""}, keys{""};
  for (int len = 1; len <= 5; ++len) {
    const std::size_t before_p = patterns.size(), before_k = keys.size();
    for (std::size_t i = 0; i < before_p; ++i)
      if (patterns[i].size() == static_cast<std::size_t>(len - 1))
        for (char c : {'a', '/', '*', '?'}) patterns.push_back(patterns[i] + c);
    for (std::size_t i = 0; i < before_k; ++i)
      if (keys[i].size() == static_cast<std::size_t>(len - 1))
        for (char c : {'a', 'b', '/'}) keys.push_back(keys[i] + c);
  }
  std::size_t checked = 0;
  for (const auto& p : patterns)
    for (const auto& k : keys) {
      ASSERT_EQ(glob_match(p, k), naive_glob(p, k)) << "pattern \"" << p << "\" key \"" << k << "\"";
      ++checked;
    }
  std::printf("%zu pattern/key pairs agree\n", checked);
}

TEST(ShardingRules, FirstMatchWinsAndUnmatchedLeavesAreReplicated) {
  const Mesh mesh(test::first_devices(4), {{"data", 2}, {"model", 2}});
  const ShardingRules rules({{"dense_0/kernel", PartitionSpec{"data"}},
                             {"dense_*/kernel", PartitionSpec{std::nullopt, "model"}},
                             {"dense_*/bias", PartitionSpec{"model"}}});
  EXPECT_EQ(rules.match("dense_0/kernel")->spec, PartitionSpec{"data"});
  EXPECT_EQ(rules.match("dense_1/kernel")->spec, (PartitionSpec{std::nullopt, "model"}));
  EXPECT_EQ(rules.match("count"), nullptr);
  EXPECT_TRUE(rules.sharding_for("count", Shape{}, mesh).is_fully_replicated());
  EXPECT_EQ(rules.sharding_for("dense_1/kernel", Shape{4, 6}, mesh).shard_shape(Shape{4, 6}), (Shape{4, 3}));
  EXPECT_EQ(rules.to_string(),
            "{dense_0/kernel: PartitionSpec(data), dense_*/kernel: PartitionSpec(None, model), dense_*/bias: "
            "PartitionSpec(model)}");
  EXPECT_THAT(test::error_of([] { ShardingRules({{"", PartitionSpec{}}}); }), HasSubstr("an empty pattern"));
}

TEST(ShardingRules, ErrorsNameTheKeyTheRuleTheSpecTheShapeAndTheMesh) {
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  const ShardingRules rules({{"w", PartitionSpec{std::nullopt, "model"}},
                             {"b", PartitionSpec{"data", std::nullopt}},
                             {"k", PartitionSpec{"data"}}});
  EXPECT_THAT(test::error_of([&] { rules.sharding_for("w", Shape{4, 4}, mesh); }),
              AllOf(HasSubstr("sharding rule \"w\" -> PartitionSpec(None, model) for \"w\" of shape [4, 4] on Mesh(data=4"),
                    HasSubstr("names axis \"model\", which is not in the mesh; its axes are (data)")));
  EXPECT_THAT(test::error_of([&] { rules.sharding_for("b", Shape{8}, mesh); }),
              AllOf(HasSubstr("for \"b\" of shape [8]"), HasSubstr("has 2 entries but \"b\" (shape [8]) has rank 1")));
  EXPECT_THAT(test::error_of([&] { rules.sharding_for("k", Shape{10, 3}, mesh); }),
              AllOf(HasSubstr("for \"k\" of shape [10, 3]"),
                    HasSubstr("dimension 0 of \"k\" has size 10, not divisible by mesh axis \"data\" of size 4")));
}

// A scalar (the optimizer's "count") has nothing to split: a rule that matches it, even a
// catch-all one, leaves it replicated.
TEST(ShardingRules, ScalarsStayReplicatedUnderAnyRule) {
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  EXPECT_EQ(fsdp_rules().sharding_for("count", Shape{}, mesh).spec(), PartitionSpec{});
  const ShardingRules all({{"**", PartitionSpec{"data"}}});
  Tree state{{"count", Array::scalar<std::int32_t>(7)}, {"w", Array::zeros({8})}};
  const ShardedTree placed = distributed::DataParallelModule().shard_model_state(state, mesh, all);
  EXPECT_EQ(placed.at("count").sharding().spec(), PartitionSpec{});
  EXPECT_EQ(placed.at("w").sharding().spec(), PartitionSpec{"data"});
  for (const Device& d : mesh.devices()) EXPECT_EQ(placed.at("count").shard_for(d).item<std::int32_t>(), 7);
  // ... but a rule naming an axis the mesh lacks is still an error, scalar or not.
  const ShardingRules bad({{"step", PartitionSpec{"no_such_axis"}}});
  EXPECT_THAT(test::error_of([&] { bad.sharding_for("step", Shape{}, mesh); }),
              HasSubstr("names axis \"no_such_axis\", which is not in the mesh"));
}

// A padded sharding: blocks of ceil(size / n), the last ones padded with zeros (or all padding),
// and gather() gives back exactly the array.
TEST(ShardingRules, PaddedLeavesPlaceAndGatherExactly) {
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  Tree state{{"dense_0/kernel", Array::zeros({10, 3})}, {"dense_0/bias", Array::zeros({2})}};
  for (auto& [key, leaf] : state)
    for (std::size_t i = 0; i < leaf.data<float>().size(); ++i) leaf.data<float>()[i] = static_cast<float>(i + 1);
  const ShardedTree placed = distributed::DataParallelModule().shard_model_state(state, mesh, fsdp_rules());
  const ShardedArray& k = placed.at("dense_0/kernel");
  EXPECT_EQ(k.sharding().shard_shape(k.shape()), (Shape{3, 3}));
  // Device 3 holds row 9 and two rows of padding; for the bias of 2, devices 2 and 3 hold padding only.
  const Array& last = k.shard_for(mesh.devices()[3]);
  EXPECT_EQ(last.shape(), (Shape{3, 3}));
  EXPECT_EQ(last.at<float>({0, 0}), 28.0f);
  EXPECT_EQ(last.at<float>({1, 0}), 0.0f);
  EXPECT_EQ(last.at<float>({2, 2}), 0.0f);
  EXPECT_EQ(k.shards()[3].index[0], (IndexRange{9, 10}));
  const ShardedArray& b = placed.at("dense_0/bias");
  EXPECT_EQ(b.shards()[2].index[0], (IndexRange{2, 2}));
  EXPECT_EQ(b.shard_for(mesh.devices()[2]).item<float>(), 0.0f);
  EXPECT_TRUE(bitwise_equal(placed.gather(), state));
  const std::vector<Shard> all = k.global_shards();
  EXPECT_EQ(all[3].data.shape(), (Shape{3, 3}));
  EXPECT_EQ(all[3].data.at<float>({0, 2}), 30.0f);
  EXPECT_EQ(all[3].data.at<float>({2, 2}), 0.0f);
}

}  // namespace
}  // namespace datarax
