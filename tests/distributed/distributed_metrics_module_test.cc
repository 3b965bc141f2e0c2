// DistributedMetricsModule and DataParallelModule::all_reduce_gradients, inside SPMD (over a named
// axis) and outside (per-device values). Expected values come from formulas of the device index.
#include "datarax/distributed/distributed_metrics_module.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "datarax/distributed/data_parallel_module.h"
#include "datarax/pmap.h"
#include "datarax/spmd.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax::distributed {
namespace {

using ::testing::HasSubstr;

// Device i's metrics: loss = 0.5 + i (f32), accuracy = i / 8 (f32), step = 10 * i (i64), and a
// vector metric hist = [i, 2i, 3i] (i32).
Tree metrics_of(int i) {
  return Tree{{"loss", Array::scalar<float>(0.5f + static_cast<float>(i))},
              {"accuracy", Array::scalar<float>(static_cast<float>(i) / 8)},
              {"step", Array::scalar<std::int64_t>(10 * i)},
              {"hist", Array::from_vector<std::int32_t>({i, 2 * i, 3 * i})}};
}

struct Expected {
  double loss_mean, acc_mean, step_mean;
  float loss_sum;
  std::int64_t step_max, step_min, step_sum;
  std::vector<std::int32_t> hist_sum;
};

Expected expected_for(int n) {
  Expected e{};
  double loss = 0, acc = 0, step = 0;
  e.hist_sum.assign(3, 0);
  e.step_min = 0;
  for (int i = 0; i < n; ++i) {
    loss += 0.5 + i;
    acc += i / 8.0;
    step += 10 * i;
    e.step_max = 10 * i;
    e.step_sum += 10 * i;
    for (int k = 0; k < 3; ++k) e.hist_sum[static_cast<std::size_t>(k)] += (k + 1) * i;
  }
  e.loss_mean = loss / n;
  e.acc_mean = acc / n;
  e.step_mean = step / n;
  e.loss_sum = static_cast<float>(loss);
  return e;
}

void check_reduced(const DistributedMetricsModule& mm, const std::function<Tree(ReduceOp)>& reduce,
                   const std::function<Tree(const DistributedMetricsModule::ReduceSpec&)>& custom, int n) {
  const Expected e = expected_for(n);
  const Tree mean = reduce(ReduceOp::mean);
  EXPECT_NEAR(mean.at("loss").item<float>(), e.loss_mean, 1e-6);
  EXPECT_NEAR(mean.at("accuracy").item<float>(), e.acc_mean, 1e-7);
  EXPECT_EQ(mean.at("step").dtype(), DType::f64);  // mean of integers is f64
  EXPECT_DOUBLE_EQ(mean.at("step").item<double>(), e.step_mean);
  const Tree sum = reduce(ReduceOp::sum);
  EXPECT_EQ(sum.at("step").dtype(), DType::i64);
  EXPECT_EQ(sum.at("step").item<std::int64_t>(), e.step_sum);
  EXPECT_EQ(sum.at("loss").item<float>(), e.loss_sum);
  EXPECT_EQ(std::vector<std::int32_t>(sum.at("hist").data<std::int32_t>().begin(), sum.at("hist").data<std::int32_t>().end()), e.hist_sum);
  EXPECT_EQ(reduce(ReduceOp::max).at("step").item<std::int64_t>(), e.step_max);
  EXPECT_EQ(reduce(ReduceOp::min).at("step").item<std::int64_t>(), e.step_min);
  const Tree c = custom({{"loss", "mean"}, {"accuracy", "MEAN"}, {"step", "max"}});
  EXPECT_NEAR(c.at("loss").item<float>(), e.loss_mean, 1e-6);
  EXPECT_EQ(c.at("step").item<std::int64_t>(), e.step_max);
  EXPECT_EQ(c.at("hist").dtype(), DType::f64);  // unlisted: mean
  EXPECT_DOUBLE_EQ(c.at("hist").data<double>()[2], static_cast<double>(e.hist_sum[2]) / n);
  (void)mm;
}

TEST(DistributedMetricsModule, InsideSpmdOverANamedAxis) {
  for (int n : {1, 2, 3, 8}) {
    SCOPED_TRACE(n);
    const Mesh mesh(test::first_devices(n), {{"batch", n}});
    DistributedMetricsModule mm;
    std::vector<std::map<ReduceOp, Tree>> reduced(static_cast<std::size_t>(n));
    std::vector<Tree> custom(static_cast<std::size_t>(n)), gathered(static_cast<std::size_t>(n));
    std::vector<std::map<std::string, std::vector<Array>>> collected(static_cast<std::size_t>(n));
    run_spmd(mesh, [&](const Device& d) {
      const auto i = static_cast<std::size_t>(d.id);
      const Tree m = metrics_of(d.id);
      reduced[i][ReduceOp::mean] = mm.reduce_mean(m, "batch");
      reduced[i][ReduceOp::sum] = mm.reduce_sum(m, "batch");
      reduced[i][ReduceOp::max] = mm.reduce_max(m, "batch");
      reduced[i][ReduceOp::min] = mm.reduce_min(m, "batch");
      custom[i] = mm.reduce_custom(m, {{"loss", "mean"}, {"accuracy", "MEAN"}, {"step", "max"}}, "batch");
      collected[i] = mm.collect_from_devices(m, "batch");
      gathered[i] = mm.all_gather(m, "batch");
    });
    for (int i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      check_reduced(mm, [&](ReduceOp op) { return reduced[k][op]; },
                    [&](const auto&) { return custom[k]; }, n);
      ASSERT_EQ(collected[k].at("step").size(), static_cast<std::size_t>(n));
      for (int j = 0; j < n; ++j) {
        EXPECT_EQ(collected[k].at("step")[static_cast<std::size_t>(j)].item<std::int64_t>(), 10 * j);
        EXPECT_EQ(gathered[k].at("hist").at<std::int32_t>({j, 1}), 2 * j);
      }
      EXPECT_EQ(gathered[k].at("loss").shape(), Shape{n});
    }
  }
}

TEST(DistributedMetricsModule, OutsideSpmdOnPerDeviceValuesMatchesInside) {
  const int n = 5;
  std::vector<Tree> per_device;
  for (int i = 0; i < n; ++i) per_device.push_back(metrics_of(i));
  DistributedMetricsModule mm;
  check_reduced(mm,
                [&](ReduceOp op) {
                  switch (op) {
                    case ReduceOp::mean: return mm.reduce_mean(per_device);
                    case ReduceOp::sum: return mm.reduce_sum(per_device);
                    case ReduceOp::max: return mm.reduce_max(per_device);
                    case ReduceOp::min: return mm.reduce_min(per_device);
                  }
                  return Tree{};
                },
                [&](const auto& spec) { return mm.reduce_custom(per_device, spec); }, n);
  const auto collected = mm.collect_from_devices(per_device);
  EXPECT_EQ(collected.at("loss")[3].item<float>(), 3.5f);
  EXPECT_EQ(mm.all_gather(per_device).at("hist").shape(), (Shape{n, 3}));

  // A pmap's stacked output is per-device metrics too; the same numbers come out, bitwise.
  const Mesh mesh(test::first_devices(n), {{"batch", n}});
  DataParallelModule dp;
  const ShardedTree placed = dp.shard_batch(Tree{{"x", Array::zeros({n})}}, NamedSharding(mesh, PartitionSpec{"batch"}));
  const ShardedTree stacked = pmap([](const Tree&) { return metrics_of(current_mesh().rank_in_group(current_device(), {"batch"})); }, "batch")(placed);
  EXPECT_TRUE(bitwise_equal(mm.reduce_mean(stacked), mm.reduce_mean(per_device)));
  EXPECT_TRUE(bitwise_equal(mm.reduce_custom(stacked, {{"step", "max"}}), mm.reduce_custom(per_device, {{"step", "max"}})));
  Tree inside;
  run_spmd(mesh, [&](const Device& d) {
    Tree r = mm.reduce_mean(metrics_of(d.id), "batch");
    if (d.id == 0) inside = r;
  });
  EXPECT_TRUE(bitwise_equal(inside, mm.reduce_mean(per_device)));
}

TEST(DistributedMetricsModule, ErrorsNameTheOffendingOpOrKey) {
  DistributedMetricsModule mm;
  std::vector<Tree> per_device{metrics_of(0), metrics_of(1)};
  EXPECT_THAT(test::error_of([&] { mm.reduce_custom(per_device, {{"loss", "median"}}); }),
              HasSubstr("unknown reduce op \"median\"; valid: mean, sum, max, min"));
  EXPECT_THAT(test::error_of([&] { mm.reduce_custom(per_device, {{"loss", "median"}}); }), HasSubstr("\"loss\""));
  EXPECT_THAT(test::error_of([&] { mm.reduce_custom(per_device, {{"f1", "max"}}); }),
              HasSubstr("an op is given for \"f1\", which is not a metric"));
  EXPECT_THAT(test::error_of([&] { mm.reduce_mean(std::vector<Tree>{}); }), HasSubstr("no per-device values given"));
  per_device[1].set("extra", Array::zeros({1}));
  EXPECT_THAT(test::error_of([&] { mm.reduce_sum(per_device); }), HasSubstr("\"extra\""));
  EXPECT_THAT(test::error_of([&] { mm.reduce_mean(metrics_of(0), "batch"); }),
              HasSubstr("called outside an SPMD function"));
}

TEST(AllReduceGradients, InsideSpmdMeanAndSumOverTheDataAxis) {
  const int n = 4;
  const Mesh mesh(test::first_devices(8), {{"data", n}, {"model", 2}});
  DataParallelModule dp;
  std::vector<Tree> mean(8), sum(8);
  run_spmd(mesh, [&](const Device& d) {
    const int data_index = mesh.coords(d)[0];
    Tree g{{"dense_0/kernel", Array::full({2, 3}, data_index + 1)}, {"dense_0/bias", Array::full({3}, 2.0 * data_index)}};
    mean[static_cast<std::size_t>(d.id)] = dp.all_reduce_gradients(g);  // "mean" over "data"
    sum[static_cast<std::size_t>(d.id)] = dp.all_reduce_gradients(g, "SUM", "data");
    Tree in_place{{"dense_0/kernel", g.at("dense_0/kernel").copy()}, {"dense_0/bias", g.at("dense_0/bias").copy()}};
    const void* buffer = in_place.at("dense_0/kernel").raw();
    dp.all_reduce_gradients_in_place(in_place, "mean", "data");
    EXPECT_EQ(in_place.at("dense_0/kernel").raw(), buffer);  // the same buffer, reduced
    EXPECT_TRUE(bitwise_equal(in_place, mean[static_cast<std::size_t>(d.id)]));
  });
  // mean of (i + 1) for i in 0..3 = 2.5; of 2i = 3; sums 10 and 12.
  for (int id = 0; id < 8; ++id) {
    EXPECT_EQ(mean[static_cast<std::size_t>(id)].at("dense_0/kernel").at<float>({1, 2}), 2.5f);
    EXPECT_EQ(mean[static_cast<std::size_t>(id)].at("dense_0/bias").data<float>()[0], 3.0f);
    EXPECT_EQ(sum[static_cast<std::size_t>(id)].at("dense_0/kernel").data<float>()[0], 10.0f);
    EXPECT_EQ(sum[static_cast<std::size_t>(id)].at("dense_0/bias").data<float>()[2], 12.0f);
  }
}

TEST(AllReduceGradients, OutsideSpmdOnPerDeviceGradientsGivesAReplicatedResult) {
  const int n = 3;
  const Mesh mesh(test::first_devices(n), {{"data", n}});
  DataParallelModule dp;
  // Per-device gradients stacked along the data axis: device i holds [i, 2i].
  Tree stacked{{"w", Array::from_values<float>({n, 2}, {0, 0, 1, 2, 2, 4})}};
  const ShardedTree per_device = dp.shard_batch(stacked, dp.create_data_parallel_sharding(mesh));
  const ShardedTree reduced = dp.all_reduce_gradients(per_device, "mean");
  const ShardedArray& w = reduced.at("w");
  EXPECT_TRUE(w.sharding().is_fully_replicated());
  ASSERT_EQ(w.shards().size(), 3u);
  for (const Shard& s : w.shards()) {
    EXPECT_EQ(s.data.shape(), Shape{2});
    EXPECT_EQ(s.data.data<float>()[0], 1.0f);
    EXPECT_EQ(s.data.data<float>()[1], 2.0f);
  }
  EXPECT_FALSE(w.shards()[0].data.shares_buffer_with(w.shards()[1].data));
}

TEST(AllReduceGradients, RejectsUnsupportedReduceTypes) {
  DataParallelModule dp;
  EXPECT_EQ(test::error_of([&] { dp.all_reduce_gradients(Tree{}, "max"); }),
            "all_reduce_gradients: unknown reduce op \"max\"; valid: mean, sum");
  EXPECT_EQ(test::error_of([&] { dp.all_reduce_gradients(ShardedTree{}, "avg"); }),
            "all_reduce_gradients: unknown reduce op \"avg\"; valid: mean, sum");
  EXPECT_EQ(test::error_of([&] { dp.all_reduce_gradients(Tree{}, ReduceOp::min); }),
            "all_reduce_gradients: unknown reduce op \"min\"; valid: mean, sum");
}

}  // namespace
}  // namespace datarax::distributed
