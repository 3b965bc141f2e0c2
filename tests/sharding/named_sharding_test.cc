// NamedSharding: the checks of a spec against a mesh and an array shape (with their messages), and
// the block arithmetic (shard_shape, num_shards, replication_factor, index_of) against the formula
// of the header. The element-level layout is swept in sharded_array_test.cc.
#include "datarax/named_sharding.h"

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
using ::testing::HasSubstr;

// The message of the InvalidArgumentError `fn` throws; fails the test if it throws nothing.
template <class Fn>
std::string invalid_argument_message(Fn&& fn) {
  try {
    fn();
  } catch (const InvalidArgumentError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InvalidArgumentError";
  return {};
}

Mesh data_model_mesh(int data, int model) {
  return Mesh(test::first_devices(data * model), {{"data", data}, {"model", model}});
}

TEST(NamedShardingTest, UnknownAxisListsTheMeshAxes) {
  const Mesh mesh = data_model_mesh(2, 4);
  for (const PartitionSpec& spec : {PartitionSpec{"tensor"}, PartitionSpec{std::nullopt, "tensor"},
                                    PartitionSpec{{"data", "tensor"}}}) {
    SCOPED_TRACE(spec.to_string());
    const std::string msg = invalid_argument_message([&] { (void)NamedSharding(mesh, spec); });
    EXPECT_THAT(msg, AllOf(HasSubstr("NamedSharding"), HasSubstr("\"tensor\""),
                           HasSubstr("not in the mesh"), HasSubstr("(data, model)")));
  }
}

TEST(NamedShardingTest, AxisUsedTwice) {
  const Mesh mesh = data_model_mesh(2, 2);
  for (const PartitionSpec& spec : {PartitionSpec{"data", "data"}, PartitionSpec{{"data", "data"}},
                                    PartitionSpec{{"model", "data"}, std::nullopt, "model"}}) {
    SCOPED_TRACE(spec.to_string());
    const std::string msg = invalid_argument_message([&] { (void)NamedSharding(mesh, spec); });
    EXPECT_THAT(msg, AllOf(HasSubstr("NamedSharding"), HasSubstr(spec.to_string()),
                           HasSubstr("twice")));
  }
  EXPECT_THAT(invalid_argument_message([&] { (void)NamedSharding(mesh, PartitionSpec{"data", "data"}); }),
              HasSubstr("mesh axis \"data\""));
}

TEST(NamedShardingTest, NotDivisibleNamesKeyDimensionSizeAndAxes) {
  const Mesh mesh1 = Mesh(test::first_devices(4), {{"data", 4}});
  const NamedSharding batch(mesh1, PartitionSpec{"data"});
  // The message of the issue, verbatim.
  EXPECT_THAT(invalid_argument_message([&] { batch.validate(Shape{10, 3}, "shard_batch", "inputs"); }),
              HasSubstr("shard_batch: dimension 0 of \"inputs\" has size 10, not divisible by mesh "
                        "axis \"data\" of size 4"));
  // Without a key, the array is named by its shape instead.
  EXPECT_THAT(invalid_argument_message([&] { batch.validate(Shape{6}); }),
              AllOf(HasSubstr("NamedSharding: dimension 0"), HasSubstr("shape [6]"),
                    HasSubstr("has size 6"), HasSubstr("mesh axis \"data\" of size 4")));

  // Several axes: named together, with the product of their sizes.
  const Mesh mesh2 = data_model_mesh(2, 4);
  const NamedSharding tuple(mesh2, PartitionSpec{std::nullopt, {"data", "model"}});
  EXPECT_THAT(invalid_argument_message([&] { tuple.validate(Shape{3, 12}, "op", "params/w"); }),
              HasSubstr("op: dimension 1 of \"params/w\" has size 12, not divisible by mesh axes "
                        "(data, model) of total size 8"));
  // Each dimension is checked against its own axes: 6 rows divide by data=2, 6 columns do not
  // divide by model=4.
  const NamedSharding two_dims(mesh2, PartitionSpec{"data", "model"});
  EXPECT_NO_THROW(two_dims.validate(Shape{6, 4}));
  EXPECT_THAT(invalid_argument_message([&] { two_dims.validate(Shape{6, 6}); }),
              AllOf(HasSubstr("dimension 1"), HasSubstr("size 6"), HasSubstr("\"model\" of size 4")));
  EXPECT_THAT(invalid_argument_message([&] { two_dims.validate(Shape{5, 4}); }),
              AllOf(HasSubstr("dimension 0"), HasSubstr("size 5"), HasSubstr("\"data\" of size 2")));
  // shard_shape and index_of validate too.
  EXPECT_THROW(two_dims.shard_shape(Shape{6, 6}), InvalidArgumentError);
  EXPECT_THROW(two_dims.index_of(mesh2.devices()[0], Shape{6, 6}), InvalidArgumentError);
  // Size 0 divides by anything.
  EXPECT_NO_THROW(two_dims.validate(Shape{0, 0}));
}

TEST(NamedShardingTest, MoreEntriesThanRank) {
  const Mesh mesh = data_model_mesh(2, 2);
  const NamedSharding sharding(mesh, PartitionSpec{"data", std::nullopt, "model"});
  EXPECT_NO_THROW(sharding.validate(Shape{2, 1, 2}));
  EXPECT_THAT(invalid_argument_message([&] { sharding.validate(Shape{4, 4}, "shard", "x"); }),
              AllOf(HasSubstr("shard: PartitionSpec(data, None, model) has 3 entries"),
                    HasSubstr("\"x\" (shape [4, 4]) has rank 2")));
  EXPECT_THAT(invalid_argument_message([&] { sharding.validate(Shape{}); }),
              AllOf(HasSubstr("3 entries"), HasSubstr("rank 0")));
  // A replicated entry counts as an entry too.
  const NamedSharding trailing_none(mesh, PartitionSpec{std::nullopt, std::nullopt});
  EXPECT_THROW(trailing_none.validate(Shape{4}), InvalidArgumentError);
}

// shard_shape, num_shards and replication_factor against the formula: a dimension split over axes
// has prod(sizes) blocks of n / prod(sizes); a block is held by the product of the unused axes.
TEST(NamedShardingTest, BlockArithmeticMatchesFormula) {
  const Mesh mesh = Mesh(test::first_devices(8), {{"data", 2}, {"model", 2}, {"pipe", 2}});
  struct Case {
    PartitionSpec spec;
    std::vector<int> blocks;  // per dim of a rank-3 array
    int replication;
  };
  const std::vector<Case> cases = {
      {PartitionSpec{}, {1, 1, 1}, 8},
      {PartitionSpec{"data"}, {2, 1, 1}, 4},
      {PartitionSpec{std::nullopt, "model"}, {1, 2, 1}, 4},
      {PartitionSpec{{"data", "model"}}, {4, 1, 1}, 2},
      {PartitionSpec{"pipe", std::nullopt, {"model", "data"}}, {2, 1, 4}, 1},
      {PartitionSpec{std::nullopt, std::nullopt, std::nullopt}, {1, 1, 1}, 8},
  };
  const Shape global{8, 6, 4};
  for (const Case& c : cases) {
    const NamedSharding sharding(mesh, c.spec);
    SCOPED_TRACE(sharding.to_string());
    EXPECT_EQ(sharding.num_shards(3), c.blocks);
    EXPECT_EQ(sharding.replication_factor(), c.replication);
    EXPECT_EQ(sharding.is_fully_replicated(), c.replication == 8);
    EXPECT_EQ(sharding.shard_shape(global),
              Shape({8 / c.blocks[0], 6 / c.blocks[1], 4 / c.blocks[2]}));
  }
}

// index_of on a data=2, model=4 mesh: the device at (d, m) is devices()[d * 4 + m] (row-major);
// over (data, model) its block is d * 4 + m, over (model, data) it is m * 2 + d.
TEST(NamedShardingTest, IndexOfFollowsMeshCoordinates) {
  const Mesh mesh = data_model_mesh(2, 4);
  const NamedSharding split(mesh, PartitionSpec{"model", "data"});
  const NamedSharding data_major(mesh, PartitionSpec{{"data", "model"}});
  const NamedSharding model_major(mesh, PartitionSpec{std::nullopt, {"model", "data"}});
  for (int d = 0; d < 2; ++d) {
    for (int m = 0; m < 4; ++m) {
      const Device& device = mesh.devices()[static_cast<std::size_t>(d * 4 + m)];
      SCOPED_TRACE(device.to_string());
      EXPECT_EQ(split.index_of(device, Shape{8, 6}),
                (std::vector<IndexRange>{{m * 2, m * 2 + 2}, {d * 3, d * 3 + 3}}));
      const std::int64_t b1 = d * 4 + m;
      EXPECT_EQ(data_major.index_of(device, Shape{16, 5}),
                (std::vector<IndexRange>{{b1 * 2, b1 * 2 + 2}, {0, 5}}));
      const std::int64_t b2 = m * 2 + d;
      EXPECT_EQ(model_major.index_of(device, Shape{3, 8}),
                (std::vector<IndexRange>{{0, 3}, {b2, b2 + 1}}));
    }
  }
}

TEST(NamedShardingTest, ToStringAndEquality) {
  const Mesh mesh = Mesh(test::first_devices(2), {{"data", 2}});
  const NamedSharding a(mesh, PartitionSpec{"data"});
  EXPECT_EQ(a.to_string(), "NamedSharding(" + mesh.to_string() + ", PartitionSpec(data))");
  EXPECT_EQ(a, NamedSharding(mesh, PartitionSpec{"data"}));
  EXPECT_NE(a, NamedSharding(mesh, PartitionSpec{}));
  EXPECT_NE(a, NamedSharding(Mesh(test::first_devices(2), {{"batch", 2}}), PartitionSpec{"batch"}));
  EXPECT_EQ(a.mesh(), mesh);
  EXPECT_EQ(a.spec(), PartitionSpec{"data"});
}

}  // namespace
}  // namespace datarax
