// pmap: Trees mapped over their leading axis, ShardedTrees from DataParallelModule used as placed,
// stacked and replicated outputs, a replicated state fed back through a few training steps, and
// the pmap axis name (its own, as in JAX) inside. Expected values come from formulas here.
#include "datarax/pmap.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "datarax/collectives.h"
#include "datarax/distributed/data_parallel_module.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;
using distributed::DataParallelModule;

// Small integers by formula, so that sums, halves and quarters are exact in f32.
float f(std::int64_t a, std::int64_t b, std::int64_t c = 0) { return static_cast<float>((a * 5 + b * 3 + c) % 7) - 3.0f; }

// A [rows, cols] f32 array with element (r, c) = f(r, c).
Array matrix(std::int64_t rows, std::int64_t cols) {
  std::vector<float> v;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) v.push_back(f(r, c));
  return Array::from_values<float>({rows, cols}, std::move(v));
}

TEST(Pmap, ATreeIsMappedOverItsLeadingAxisAndResultsAreStacked) {
  const std::vector<Device> devs = test::first_devices(8);  // a Tree-only pmap runs on every local device
  std::vector<float> xs;
  for (std::int64_t i = 0; i < 8; ++i)
    for (std::int64_t j = 0; j < 3; ++j)
      for (std::int64_t k = 0; k < 2; ++k) xs.push_back(f(i, j, k));
  std::vector<std::int32_t> ss = {10, 20, 30, 40, 50, 60, 70, 80};
  const Tree input{{"x", Array::from_values<float>({8, 3, 2}, xs)}, {"s", Array::from_vector(ss)}};

  const auto fn = pmap([](const Tree& t) {
    const Array& x = t.at("x");
    if (x.shape() != Shape{3, 2} || t.at("s").rank() != 0) throw std::runtime_error("leading axis not removed");
    // y = 2 x + s + 1000 * (pmap index)
    Array y = Array::empty({3, 2});
    const float add = static_cast<float>(t.at("s").item<std::int32_t>() + 1000 * axis_index("batch"));
    for (std::size_t e = 0; e < 6; ++e) y.data<float>()[e] = 2 * x.data<float>()[e] + add;
    return Tree{{"y", y}, {"device", Array::scalar<std::int32_t>(current_device().id)},
                {"n", Array::scalar<std::int32_t>(axis_size("batch"))}};
  }, "batch");
  const ShardedTree out = fn(input);

  std::vector<float> want_y;
  for (std::int64_t i = 0; i < 8; ++i)
    for (std::int64_t j = 0; j < 3; ++j)
      for (std::int64_t k = 0; k < 2; ++k)
        want_y.push_back(2 * f(i, j, k) + static_cast<float>(ss[static_cast<std::size_t>(i)] + 1000 * i));
  const Tree got = out.gather();
  EXPECT_TRUE(bitwise_equal(got.at("y"), Array::from_values<float>({8, 3, 2}, want_y)));
  EXPECT_TRUE(bitwise_equal(got.at("device"), Array::from_vector<std::int32_t>({0, 1, 2, 3, 4, 5, 6, 7})));
  EXPECT_TRUE(bitwise_equal(got.at("n"), Array::from_vector<std::int32_t>(std::vector<std::int32_t>(8, 8))));
  EXPECT_EQ(out.at("y").sharding().spec(), PartitionSpec{"batch"});
  EXPECT_EQ(out.at("y").sharding().mesh().devices(), devs);
}

TEST(Pmap, ALeadingSizeOtherThanTheDeviceCountIsAClearError) {
  test::first_devices(8);
  const auto fn = pmap([](const Tree& a, const Tree&) { return a; }, "batch");
  const Tree good{{"x", Array::zeros({8, 3})}};
  EXPECT_THAT(test::error_of([&] { fn(Tree{{"x", Array::zeros({7, 3})}}, good); }),
              HasSubstr("pmap: argument 0, leaf \"x\" has shape [7, 3]; pmap maps over the leading axis, whose "
                        "size must equal the number of devices (8)"));
  EXPECT_THAT(test::error_of([&] { fn(good, Tree{{"y/z", Array::scalar(1.0f)}}); }),
              HasSubstr("pmap: argument 1, leaf \"y/z\" has shape []"));
  // Against a placed input the device count is that of its mesh.
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  const DataParallelModule dp;
  const ShardedTree placed = dp.shard_batch(Tree{{"x", Array::zeros({8, 3})}}, dp.create_data_parallel_sharding(mesh));
  EXPECT_THAT(test::error_of([&] { fn(placed, good); }),
              HasSubstr("argument 1, leaf \"x\" has shape [8, 3]; pmap maps over the leading axis, whose size "
                        "must equal the number of devices (4)"));
}

TEST(Pmap, EachDeviceSeesItsShardOfABatchFromShardBatch) {
  const DataParallelModule dp;
  const Tree batch{{"inputs", matrix(8, 3)}, {"labels", Array::from_vector<std::int32_t>({0, 1, 2, 3, 4, 5, 6, 7})}};
  // 1-D (data=4): device i holds rows 2i, 2i+1. Hybrid (data=2, model=2): device (d, m) = 2d + m
  // holds rows 4d .. 4d+3, whatever m.
  for (const std::vector<MeshAxis>& axes : {std::vector<MeshAxis>{{"data", 4}},
                                            std::vector<MeshAxis>{{"data", 2}, {"model", 2}}}) {
    const std::vector<Device> devs = test::first_devices(4);
    const Mesh mesh(devs, axes);
    SCOPED_TRACE(mesh.to_string());
    const std::int64_t rows = 8 / axes[0].second;
    const ShardedTree sharded = dp.shard_batch(batch, dp.create_data_parallel_sharding(mesh));
    const ShardedTree out = pmap([](const Tree& b) {
      return Tree{{"inputs", b.at("inputs")}, {"labels", b.at("labels")}, {"index", Array::scalar<std::int32_t>(axis_index("batch"))}};
    }, "batch")(sharded);
    const Tree got = out.gather();
    std::vector<float> want_inputs;
    std::vector<std::int32_t> want_labels;
    for (int p = 0; p < 4; ++p) {
      const std::int64_t first = (p / (4 / axes[0].second)) * rows;  // the device's data coordinate times rows
      for (std::int64_t r = first; r < first + rows; ++r) {
        want_labels.push_back(static_cast<std::int32_t>(r));
        for (std::int64_t c = 0; c < 3; ++c) want_inputs.push_back(f(r, c));
      }
    }
    EXPECT_TRUE(bitwise_equal(got.at("inputs"), Array::from_values<float>({4, rows, 3}, want_inputs)));
    EXPECT_TRUE(bitwise_equal(got.at("labels"), Array::from_values<std::int32_t>({4, rows}, want_labels)));
    EXPECT_TRUE(bitwise_equal(got.at("index"), Array::from_vector<std::int32_t>({0, 1, 2, 3})));
  }
}

// A toy step: the gradient of w is the mean over the whole batch of its rows (each device averages
// its rows, then pmean over the pmap axis); w -= 0.5 * gradient; step += 1.
Tree toy_step(const Tree& state, const Tree& batch) {
  const Array& x = batch.at("x");
  const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
  Array local = Array::zeros({cols});
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) local.at<float>({c}) += x.at<float>({r, c}) / static_cast<float>(rows);
  const Array grad = pmean(local, "batch");  // the pmap axis, not the mesh's "data"
  Array w = state.at("w").copy();
  for (std::int64_t c = 0; c < cols; ++c) w.at<float>({c}) -= 0.5f * grad.at<float>({c});
  return Tree{{"w", w}, {"step", Array::scalar<std::int32_t>(state.at("step").item<std::int32_t>() + 1)}};
}

TEST(Pmap, AReplicatedStateIsFedBackThroughThreeSteps) {
  const std::vector<Device> devs = test::first_devices(4);
  const Mesh mesh(devs, {{"data", 4}});
  const DataParallelModule dp;
  const Tree batch{{"x", matrix(8, 3)}};
  const Tree state0{{"w", Array::from_vector<float>({1, 2, 3})}, {"step", Array::scalar<std::int32_t>(0)}};
  const ShardedTree sharded_batch = dp.shard_batch(batch, dp.create_data_parallel_sharding(mesh));
  ShardedTree state = dp.shard_model_state(state0, mesh);
  const auto train_step = pmap(toy_step, "batch", {.output = PmapOutput::replicated});

  // Column means of the whole batch; every step subtracts half of them.
  std::vector<float> mean(3, 0.0f);
  for (std::int64_t r = 0; r < 8; ++r)
    for (std::int64_t c = 0; c < 3; ++c) mean[static_cast<std::size_t>(c)] += f(r, c) / 8;
  for (int step = 1; step <= 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    state = train_step(state, sharded_batch);
    std::vector<float> want_w;
    for (std::size_t c = 0; c < 3; ++c) want_w.push_back(static_cast<float>(c + 1) - 0.5f * static_cast<float>(step) * mean[c]);
    const Tree want{{"w", Array::from_vector(want_w)}, {"step", Array::scalar<std::int32_t>(step)}};
    EXPECT_TRUE(bitwise_equal(state.gather(), want));
    // Replicated: every device holds the whole value in a buffer of its own.
    const auto& shards = state.at("w").shards();
    ASSERT_EQ(shards.size(), 4u);
    EXPECT_TRUE(state.at("w").sharding().is_fully_replicated());
    for (std::size_t i = 0; i < shards.size(); ++i) {
      EXPECT_EQ(shards[i].device, devs[i]);
      EXPECT_TRUE(bitwise_equal(shards[i].data, want.at("w")));
      for (std::size_t j = 0; j < i; ++j) EXPECT_FALSE(shards[i].data.shares_buffer_with(shards[j].data));
    }
  }

  // The mesh's axis name means nothing inside pmap: only the pmap axis exists there.
  EXPECT_THAT(test::error_of([&] {
    pmap([](const Tree& b) { return pmean(b, "data"); }, "batch")(sharded_batch);
  }), HasSubstr("pmean: unknown axis \"data\"; the mesh has axes (batch)"));
}

TEST(Pmap, ReplicatedOutputsThatDifferAreAnError) {
  test::first_devices(8);
  EXPECT_THAT(test::error_of([] {
    pmap([](const Tree&) { return Tree{{"w", Array::full({2}, axis_index("i") == 3 ? 1.0 : 0.0)}}; }, "i",
         {.output = PmapOutput::replicated})(Tree{});
  }), HasSubstr("pmap: output \"w\" has out_spec PartitionSpec(), which replicates it, but cpu:0 and cpu:3"));
}

TEST(Pmap, TwoArgumentsMixingAMappedTreeAndAPlacedBatch) {
  const std::vector<Device> devs = test::first_devices(4);
  const Mesh mesh(devs, {{"data", 4}});
  const DataParallelModule dp;
  const ShardedTree batch = dp.shard_batch(Tree{{"x", matrix(8, 3)}}, dp.create_data_parallel_sharding(mesh));
  // Per-device scales, mapped over their leading axis: device i gets scale[i].
  const Tree scales{{"k", Array::from_vector<float>({1, 2, 3, 4})}};
  const auto fn = pmap([](const Tree& scale, const Tree& b) {
    Array y = b.at("x").copy();
    for (float& v : y.data<float>()) v *= scale.at("k").item<float>();
    return Tree{{"y", pmax(y, "rows")}};
  }, "rows");
  const Tree got = fn(scales, batch).gather();
  // Device i holds rows 2i, 2i+1 scaled by i+1; the max over devices, stacked four times.
  std::vector<float> want;
  for (int i = 0; i < 4; ++i)
    for (std::int64_t r = 0; r < 2; ++r)
      for (std::int64_t c = 0; c < 3; ++c) {
        float m = -1e9f;
        for (int k = 0; k < 4; ++k) m = std::max(m, f(2 * k + r, c) * static_cast<float>(k + 1));
        want.push_back(m);
      }
  EXPECT_TRUE(bitwise_equal(got.at("y"), Array::from_values<float>({4, 2, 3}, want)));

  // Placed inputs on different devices cannot be mapped together.
  const std::vector<Device> all = test::first_devices(8);
  const Mesh other(std::vector<Device>(all.begin() + 4, all.end()), {{"data", 4}});
  const ShardedTree elsewhere = dp.shard_batch(Tree{{"z", matrix(8, 3)}}, dp.create_data_parallel_sharding(other));
  EXPECT_THAT(test::error_of([&] { fn(batch, elsewhere); }),
              HasSubstr("pmap: input \"z\" is placed on Mesh(data=4; cpu:4..7), other inputs on other devices"));
}

}  // namespace
}  // namespace datarax
