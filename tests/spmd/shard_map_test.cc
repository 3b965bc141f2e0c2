// shard_map over 1-D and 2-D meshes. What each device sees is checked against a block computed
// here from the device's coordinates and the spec (first axis major), and what comes back against
// the input or a sum written out by hand.
#include "datarax/shard_map.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "datarax/collectives.h"
#include "datarax/distributed/data_parallel_module.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;
using Range = std::pair<std::int64_t, std::int64_t>;

// A 2-D array whose element (r, c) is f(r, c), in any dtype.
Array grid(std::int64_t rows, std::int64_t cols, DType dtype, double (*f)(std::int64_t, std::int64_t)) {
  Array a = Array::empty({rows, cols}, dtype);
  visit_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    auto d = a.data<T>();
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        d[static_cast<std::size_t>(r * cols + c)] = static_cast<T>(static_cast<float>(f(r, c)));
  });
  return a;
}

double f_x(std::int64_t r, std::int64_t c) { return static_cast<double>(r * 100 + c); }
double f_y(std::int64_t r, std::int64_t c) { return static_cast<double>((r * 7 + c * 3) % 50) - 20; }

// Row-major coordinates of flat mesh position p.
std::vector<int> coords_of(const std::vector<MeshAxis>& axes, int p) {
  std::vector<int> c(axes.size());
  for (std::size_t k = axes.size(); k-- > 0;) {
    c[k] = p % axes[k].second;
    p /= axes[k].second;
  }
  return c;
}

// The part of dimension `dim` (of size `extent`) that the device at `coords` holds under `spec`:
// the dimension's axes split it into blocks, numbered row-major over those axes (first major).
Range range_of(const std::vector<MeshAxis>& axes, const std::vector<int>& coords, const PartitionSpec& spec,
               int dim, std::int64_t extent) {
  std::int64_t parts = 1, index = 0;
  if (dim < spec.size())
    for (const std::string& name : spec.entries()[static_cast<std::size_t>(dim)].axes())
      for (std::size_t k = 0; k < axes.size(); ++k)
        if (axes[k].first == name) {
          index = index * axes[k].second + coords[k];
          parts *= axes[k].second;
        }
  const std::int64_t len = extent / parts;
  return {index * len, (index + 1) * len};
}

// Rows [r.first, r.second) and columns [c.first, c.second) of a 2-D array, as a new array.
Array block(const Array& a, Range r, Range c) {
  const std::int64_t cols = a.shape()[1], w = c.second - c.first;
  Array out = Array::empty({r.second - r.first, w}, a.dtype());
  const auto* src = static_cast<const std::byte*>(a.raw());
  auto* dst = static_cast<std::byte*>(out.raw());
  for (std::int64_t i = r.first; i < r.second; ++i)
    std::memcpy(dst + static_cast<std::size_t>((i - r.first) * w) * a.itemsize(),
                src + static_cast<std::size_t>(i * cols + c.first) * a.itemsize(),
                static_cast<std::size_t>(w) * a.itemsize());
  return out;
}

Array expected_block(const Array& global, const std::vector<MeshAxis>& axes, int p, const PartitionSpec& spec) {
  const std::vector<int> c = coords_of(axes, p);
  return block(global, range_of(axes, c, spec, 0, global.shape()[0]), range_of(axes, c, spec, 1, global.shape()[1]));
}

int position(const std::vector<Device>& devs, const Device& d) {
  return static_cast<int>(std::find(devs.begin(), devs.end(), d) - devs.begin());
}

TEST(ShardMap, ReturningTheBlockUnderTheSameSpecGivesBackTheInput) {
  const std::vector<std::vector<MeshAxis>> meshes = {
      {{"data", 1}}, {{"data", 3}}, {{"data", 4}}, {{"data", 8}},
      {{"data", 2}, {"model", 4}}, {{"data", 4}, {"model", 2}}, {{"data", 2}, {"model", 3}}};
  // Every leaf is 2-D with sides divisible by 24, which every split below divides.
  const Tree input{{"x", grid(24, 48, DType::f32, f_x)},
                   {"y/i", grid(48, 24, DType::i32, f_y)},
                   {"y/b", grid(24, 24, DType::bf16, f_y)}};
  for (const auto& axes : meshes) {
    const bool two_d = axes.size() == 2;
    std::vector<PartitionSpec> specs = {PartitionSpec{}, PartitionSpec{"data"}, PartitionSpec{std::nullopt, "data"}};
    if (two_d)
      specs.insert(specs.end(), {PartitionSpec{"model"}, PartitionSpec{std::nullopt, "model"},
                                 PartitionSpec{"data", "model"}, PartitionSpec{"model", "data"},
                                 PartitionSpec{{"data", "model"}}, PartitionSpec{{"model", "data"}},
                                 PartitionSpec{std::nullopt, {"data", "model"}}});
    int n = 1;
    for (const auto& a : axes) n *= a.second;
    const std::vector<Device> devs = test::first_devices(n);
    const Mesh mesh(devs, axes);
    for (const PartitionSpec& spec : specs) {
      SCOPED_TRACE(mesh.to_string() + " " + spec.to_string());
      std::vector<Tree> seen(devs.size());
      const ShardedTree out = shard_map(mesh, [&](const Tree& local) {
        seen[static_cast<std::size_t>(position(devs, current_device()))] = local.map([](const Array& a) { return a.copy(); });
        return local;
      }, spec, spec)(input);
      for (int p = 0; p < n; ++p)
        for (const auto& [key, leaf] : input)
          EXPECT_TRUE(bitwise_equal(seen[static_cast<std::size_t>(p)].at(key), expected_block(leaf, axes, p, spec)))
              << key << " on device " << p;
      EXPECT_TRUE(bitwise_equal(out.gather(), input));
      for (const auto& [key, leaf] : out) EXPECT_EQ(leaf.sharding().spec(), spec) << key;
    }
  }
}

TEST(ShardMap, PsumThenAReplicatedOrPartlyReplicatedOutSpec) {
  const Array x = grid(8, 12, DType::f32, f_x);
  {  // 1-D: every device's [2, 12] block, summed; replicated out.
    const Mesh mesh(test::first_devices(4), {{"data", 4}});
    const ShardedTree out = shard_map(mesh, [](const Tree& t) { return psum(t, "data"); },
                                      PartitionSpec{"data"}, PartitionSpec{})(Tree{{"x", x}});
    EXPECT_TRUE(out.at("x").sharding().is_fully_replicated());
    Array want = Array::zeros({2, 12});
    for (std::int64_t r = 0; r < 2; ++r)
      for (std::int64_t c = 0; c < 12; ++c)
        for (int k = 0; k < 4; ++k) want.at<float>({r, c}) += static_cast<float>(f_x(k * 2 + r, c));
    EXPECT_TRUE(bitwise_equal(out.at("x").gather(), want));
  }
  // 2-D (data=2, model=3), x split over both: the sum over model varies along data only, so its
  // out_spec names data; the sum over both is replicated.
  const std::vector<MeshAxis> axes = {{"data", 2}, {"model", 3}};
  const Mesh mesh(test::first_devices(6), axes);
  const ShardedTree out = shard_map(mesh, [](const Tree& t) {
    return Tree{{"over_model", psum(t.at("x"), "model")}, {"over_both", psum(t.at("x"), {"model", "data"})}};
  }, PartitionSpec{"data", "model"}, TreeSpec({{"over_model", PartitionSpec{"data"}}}))(Tree{{"x", x}});
  Array over_model = Array::zeros({8, 4}), over_both = Array::zeros({4, 4});
  for (std::int64_t r = 0; r < 8; ++r)
    for (std::int64_t c = 0; c < 4; ++c)
      for (int m = 0; m < 3; ++m) {
        over_model.at<float>({r, c}) += static_cast<float>(f_x(r, m * 4 + c));
        over_both.at<float>({r % 4, c}) += static_cast<float>(f_x(r, m * 4 + c));
      }
  EXPECT_TRUE(bitwise_equal(out.at("over_model").gather(), over_model));
  EXPECT_TRUE(bitwise_equal(out.at("over_both").gather(), over_both));
}

TEST(ShardMap, DifferingValuesUnderAReplicatedOutSpecNameTheKeyAndTwoDevices) {
  const Mesh line(test::first_devices(4), {{"data", 4}});
  EXPECT_THAT(test::error_of([&] {
    shard_map(line, [](const Tree&) { return Tree{{"y", Array::full({2}, axis_index("data"))}}; },
              PartitionSpec{}, PartitionSpec{})(Tree{});
  }), HasSubstr("shard_map: output \"y\" has out_spec PartitionSpec(), which replicates it, but cpu:0 and "
                "cpu:1 returned different values"));
  const Mesh grid2(test::first_devices(8), {{"data", 2}, {"model", 4}});
  // Varies along data, which the out_spec does not name: device (1, 0) = cpu:4 disagrees with cpu:0.
  EXPECT_THAT(test::error_of([&] {
    shard_map(grid2, [](const Tree&) { return Tree{{"v", Array::full({2}, axis_index("data"))}}; },
              PartitionSpec{}, PartitionSpec{"model"})(Tree{});
  }), HasSubstr("output \"v\" has out_spec PartitionSpec(model), which replicates it, but cpu:0 and cpu:4"));
  // Only cpu:6 differs.
  EXPECT_THAT(test::error_of([&] {
    shard_map(grid2, [](const Tree&) { return Tree{{"w", Array::full({1}, current_device().id == 6 ? 1.0 : 0.0)}}; },
              PartitionSpec{}, PartitionSpec{})(Tree{});
  }), HasSubstr("output \"w\" has out_spec PartitionSpec(), which replicates it, but cpu:0 and cpu:6"));
  // Shapes that differ are named too.
  EXPECT_THAT(test::error_of([&] {
    shard_map(line, [](const Tree&) { return Tree{{"z", Array::zeros({axis_index("data") == 2 ? 3 : 2})}}; },
              PartitionSpec{}, PartitionSpec{"data"})(Tree{});
  }), HasSubstr("shard_map: output \"z\" is f32[2] on cpu:0 but f32[3] on cpu:2"));
}

TEST(ShardMap, TreeSpecGivesEachKeyItsOwnSpec) {
  const std::vector<MeshAxis> axes = {{"data", 2}, {"model", 4}};
  const std::vector<Device> devs = test::first_devices(8);
  const Mesh mesh(devs, axes);
  const Tree input{{"x", grid(8, 8, DType::f32, f_x)}, {"w", grid(4, 8, DType::f32, f_y)},
                   {"b", grid(1, 8, DType::i32, f_y)}};
  const TreeSpec specs({{"x", PartitionSpec{"data"}}, {"w", PartitionSpec{std::nullopt, "model"}}});
  std::vector<Tree> seen(devs.size());
  const ShardedTree out = shard_map(mesh, [&](const Tree& local) {
    seen[static_cast<std::size_t>(position(devs, current_device()))] = local;
    Tree result = local;
    result.set("size", Array::scalar<std::int32_t>(axis_size({"data", "model"})));
    return result;
  }, specs, specs)(input);
  for (int p = 0; p < 8; ++p) {
    const Tree& t = seen[static_cast<std::size_t>(p)];
    EXPECT_TRUE(bitwise_equal(t.at("x"), expected_block(input.at("x"), axes, p, PartitionSpec{"data"}))) << p;
    EXPECT_TRUE(bitwise_equal(t.at("w"), expected_block(input.at("w"), axes, p, PartitionSpec{std::nullopt, "model"}))) << p;
    EXPECT_TRUE(bitwise_equal(t.at("b"), input.at("b"))) << p;  // not listed: replicated
  }
  Tree want = input;
  want.set("size", Array::scalar<std::int32_t>(8));
  EXPECT_TRUE(bitwise_equal(out.gather(), want));
  EXPECT_EQ(out.at("w").sharding().spec(), (PartitionSpec{std::nullopt, "model"}));
  EXPECT_TRUE(out.at("b").sharding().is_fully_replicated());
}

TEST(ShardMap, APlacedShardedTreeIsUsedAsPlaced) {
  const std::vector<Device> devs = test::first_devices(4);
  const Mesh mesh(devs, {{"data", 2}, {"model", 2}});
  const Tree batch{{"inputs", grid(8, 3, DType::f32, f_x)}, {"labels", grid(8, 1, DType::i32, f_y)}};
  const distributed::DataParallelModule dp;
  const ShardedTree placed = dp.shard_batch(batch, dp.create_data_parallel_sharding(mesh));
  std::vector<int> shared(devs.size(), 0);
  const ShardedTree out = shard_map(mesh, [&](const Tree& local) {
    const Device& d = current_device();
    int same = 1;
    for (const auto& [key, leaf] : local) same &= leaf.shares_buffer_with(placed.at(key).shard_for(d)) ? 1 : 0;
    shared[static_cast<std::size_t>(position(devs, d))] = same;
    return local;
  }, PartitionSpec{"data"}, PartitionSpec{"data"})(placed);
  EXPECT_EQ(shared, std::vector<int>(4, 1)) << "each device gets the very shard placed for it";
  EXPECT_TRUE(bitwise_equal(out.gather(), batch));

  // Placed on a mesh that lacks some of the shard_map mesh's devices.
  const Mesh small(test::first_devices(2), {{"data", 2}});
  const ShardedTree elsewhere = dp.shard_batch(batch, dp.create_data_parallel_sharding(small));
  EXPECT_THAT(test::error_of([&] {
    shard_map(mesh, [](const Tree& t) { return t; }, PartitionSpec{"data"}, PartitionSpec{"data"})(elsewhere);
  }), HasSubstr("which lacks cpu:2 of the shard_map mesh"));
}

TEST(ShardMap, ASpecForAKeyTheTreeLacksIsAKeyError) {
  const Mesh mesh(test::first_devices(2), {{"data", 2}});
  const Tree input{{"x", grid(4, 2, DType::f32, f_x)}};
  const auto identity = [](const Tree& t) { return t; };
  EXPECT_THROW(shard_map(mesh, identity, TreeSpec({{"w", PartitionSpec{"data"}}}), PartitionSpec{})(input), KeyError);
  EXPECT_THAT(test::error_of([&] {
    shard_map(mesh, identity, TreeSpec({{"w", PartitionSpec{"data"}}}), PartitionSpec{})(input);
  }), HasSubstr("shard_map: a PartitionSpec is given for \"w\", which is not a key of the tree; its keys are x"));
  // Likewise an out_spec for a key the function does not return.
  EXPECT_THROW(shard_map(mesh, identity, PartitionSpec{"data"}, TreeSpec({{"y", PartitionSpec{"data"}}}))(input),
               KeyError);
  // And a split that does not divide names the key.
  EXPECT_THAT(test::error_of([&] {
    shard_map(mesh, identity, PartitionSpec{"data"}, PartitionSpec{"data"})(Tree{{"odd", Array::zeros({5})}});
  }), HasSubstr("\"odd\""));
}

TEST(ShardMap, ADeviceFunctionThatThrowsIsADeviceErrorNamingTheDevice) {
  const Mesh mesh(test::first_devices(8), {{"data", 2}, {"model", 4}});
  const auto step = shard_map(mesh, [](const Tree& t) {
    if (axis_index("data") == 1 && axis_index("model") == 2) throw std::runtime_error("bad shard");
    return psum(t, {"data", "model"});  // the others wait here, and are released
  }, PartitionSpec{"data"}, PartitionSpec{}, {.timeout = std::chrono::seconds(30)});
  const auto start = std::chrono::steady_clock::now();
  try {
    step(Tree{{"x", grid(4, 4, DType::f32, f_x)}});
    FAIL() << "no error";
  } catch (const DeviceError& e) {
    EXPECT_EQ(e.device().id, 6);  // coordinates (1, 2)
    EXPECT_STREQ(e.what(), "device cpu:6: bad shard");
    EXPECT_THROW(std::rethrow_exception(e.original()), std::runtime_error);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace datarax
