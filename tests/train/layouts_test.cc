// The trainer on every layout of the work — ZeRO stages 0-3 over "data", tensor parallelism over
// "model", and both on a hybrid mesh: the same losses and parameters as one device, the
// collectives each layout's step makes (listed from the shapes), and the bytes each device holds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

#include "datarax/device_discovery.h"
#include "datarax/train/trainer.h"
#include "train/mlp_run.h"
#include "support/collective_log.h"
#include "support/skip.h"

namespace datarax::train {
namespace {

using test::CollectiveLog;
using Calls = std::vector<CollectiveLog::Call>;

test::MlpRun run_of(int data, int model, int stage, std::int64_t steps) {
  test::MlpRun c;
  c.data_parallel = data;
  c.model_parallel = model;
  c.zero_stage = stage;
  c.steps = steps;
  c.hidden = {64, 32};
  c.batch_size = 256;
  c.seed = 3;
  c.schedule = "constant";
  return c;
}

// How far tensor b is from a: {‖a − b‖₂ / ‖a‖₂, max |a − b| / max |a|}.
std::pair<double, double> tensor_difference(const Array& a, const Array& b) {
  double d2 = 0, a2 = 0, dmax = 0, amax = 0;
  const auto x = a.data<float>(), y = b.data<float>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - y[i];
    d2 += d * d;
    a2 += static_cast<double>(x[i]) * x[i];
    dmax = std::max(dmax, std::abs(d));
    amax = std::max(amax, std::abs(static_cast<double>(x[i])));
  }
  return {a2 > 0 ? std::sqrt(d2 / a2) : std::sqrt(d2), amax > 0 ? dmax / amax : dmax};
}

double worst_loss_difference(const TrainReport& a, const TrainReport& b) {
  double worst = 0;
  for (std::size_t s = 0; s < a.steps.size(); ++s)
    worst = std::max(worst, std::abs(a.steps[s].loss - b.steps[s].loss) / std::abs(a.steps[s].loss));
  return worst;
}

// Tensor parallelism (and FSDP with it) computes what one device computes: per-step losses within
// 1e-5 relative over 50 steps, and each final parameter tensor within 1e-5 in relative L2 norm,
// with AdamW's decay and gradient clipping (whose norm adds the split blocks over "model" and
// counts the replicated ones once). The largest single-element difference is printed: it is
// larger (about 2e-6 of the tensor's largest element, in the first kernel's rows of border pixels,
// which are rarely nonzero: Adam divides their tiny gradients by tiny moments, so rounding in a
// different summation order moves them by up to a few thousandths of a step). GELU: with ReLU a
// pre-activation within rounding of 0 can land on the other side of the kink in one layout and
// the runs part (1e-3 by step 50 with OpenBLAS's kernel, whose column blocks round by width).
TEST(Layouts, TensorParallelRunsGiveTheOneDeviceLossesAndParameters) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  test::MlpRun c = run_of(1, 1, 0, 50);
  c.activation = "gelu";
  c.optimizer = "adamw";
  c.clip_norm = 0.5;
  c.shuffle = false;
  const TrainReport one = train(c);
  ASSERT_EQ(one.steps.size(), 50u);
  EXPECT_LT(one.steps.back().loss, one.steps.front().loss * 0.5);  // it learns
  for (auto [d, m, s] : {std::tuple{1, 2, 0}, {1, 4, 0}, {2, 2, 0}, {2, 2, 3}, {4, 2, 2}, {2, 4, 1}}) {
    test::MlpRun l = c;
    l.data_parallel = d;
    l.model_parallel = m;
    l.zero_stage = s;
    const TrainReport r = train(l);
    ASSERT_EQ(r.steps.size(), 50u);
    const double worst = worst_loss_difference(one, r);
    EXPECT_LT(worst, 1e-5) << "data " << d << " model " << m << " stage " << s;
    ASSERT_EQ(r.params.keys(), one.params.keys());
    double worst_norm = 0, worst_element = 0;
    for (const auto& [key, leaf] : one.params) {
      ASSERT_EQ(r.params.at(key).shape(), leaf.shape()) << key;
      const auto [norm, element] = tensor_difference(leaf, r.params.at(key));
      EXPECT_LT(norm, 1e-5) << key << ": data " << d << " model " << m << " stage " << s;
      worst_norm = std::max(worst_norm, norm);
      worst_element = std::max(worst_element, element);
    }
    std::printf("data %d x model %d, ZeRO %d: worst relative loss difference %.3g; parameters: worst tensor %.3g "
                "(relative L2), worst element %.3g (of the tensor's largest)\n",
                d, m, s, worst, worst_norm, worst_element);
  }
}

// ZeRO's stages change where the optimizer's arithmetic runs, not the arithmetic: stages 1 to 3
// give bitwise the replicated step's losses and parameters, with clipping and AdamW's decay, also
// with the data axis not dividing the units (3 devices: padded slices).
TEST(Layouts, ZeroStagesAreBitwiseTheReplicatedStep) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  for (auto [d, m] : {std::pair{2, 1}, {3, 1}, {2, 2}}) {
    test::MlpRun c = run_of(d, m, 0, 12);
    c.batch_size = 6 * 40;
    c.optimizer = "adamw";
    c.clip_norm = 0.5;
    const TrainReport replicated = train(c);
    for (int stage : {1, 2, 3}) {
      c.zero_stage = stage;
      const TrainReport sharded = train(c);
      for (std::size_t s = 0; s < 12; ++s)
        EXPECT_EQ(sharded.steps[s].loss, replicated.steps[s].loss) << d << "x" << m << " stage " << stage << " step " << s;
      EXPECT_TRUE(bitwise_equal(sharded.params, replicated.params)) << d << "x" << m << " stage " << stage;
    }
  }
}

std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

CollectiveLog::Call all_reduce(ReduceOp op, DType t, std::int64_t n, int group) {
  return {CollectiveKind::all_reduce, op, t, n, group};
}
CollectiveLog::Call all_gather(std::int64_t n, int group) {
  return {CollectiveKind::all_gather, ReduceOp::sum, DType::f32, n, group};
}
CollectiveLog::Call reduce_scatter(std::int64_t n, int group) {
  return {CollectiveKind::reduce_scatter, ReduceOp::mean, DType::f32, n, group};
}

// Checks that two steps each make `step` (the calls after the last step gather the final state).
void expect_steps(const test::MlpRun& c, const Calls& step, const char* what) {
  const Calls calls = test::collectives_of([&] { train(c); });
  ASSERT_GE(calls.size(), 2 * step.size()) << what;
  EXPECT_EQ(Calls(calls.begin(), calls.begin() + static_cast<std::ptrdiff_t>(step.size())), step) << what << ", step 1";
  EXPECT_EQ(Calls(calls.begin() + static_cast<std::ptrdiff_t>(step.size()),
                  calls.begin() + static_cast<std::ptrdiff_t>(2 * step.size())),
            step)
      << what << ", step 2";
}

// The collectives of one step of the MLP 784-64-32-10, listed from its shapes: units are padded to
// a multiple of 16 N floats (N the data axis' size); a reduce-scatter's count is the whole unit,
// an all-gather's the slice.
TEST(Layouts, EachLayoutsStepMakesTheCollectivesItsShapesCallFor) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  const auto f64 = DType::f64, f32 = DType::f32;
  {  // ZeRO-2 on 2 devices: each layer's gradients reduce-scattered as backward ends it, last layer first
    const std::int64_t u0 = round_up(784 * 64 + 64, 32), u1 = round_up(64 * 32 + 32, 32), u2 = round_up(32 * 10 + 10, 32);
    test::MlpRun c = run_of(2, 1, 2, 2);
    c.clip_norm = 1.0;
    expect_steps(c,
                 {reduce_scatter(u2, 2), reduce_scatter(u1, 2), reduce_scatter(u0, 2),
                  all_reduce(ReduceOp::sum, f64, 1, 2),  // the clip norm's Σ x² over the slices
                  all_gather(u0 / 2, 2), all_gather(u1 / 2, 2), all_gather(u2 / 2, 2),
                  all_reduce(ReduceOp::sum, f64, 3, 2)},  // loss, correct, stop
                 "ZeRO-2");
    // FSDP: forward gathers every layer; backward the middle one again (the last is still there,
    // the first needs no weights), and reduce-scatters each layer's gradients.
    c.zero_stage = 3;
    expect_steps(c,
                 {all_gather(u0 / 2, 2), all_gather(u1 / 2, 2), all_gather(u2 / 2, 2),
                  reduce_scatter(u2, 2), all_gather(u1 / 2, 2), reduce_scatter(u1, 2), reduce_scatter(u0, 2),
                  all_reduce(ReduceOp::sum, f64, 1, 2), all_reduce(ReduceOp::sum, f64, 3, 2)},
                 "FSDP");
  }
  {  // Tensor parallelism, model 2: layer 0 column, layer 1 row, layer 2 whole. One all-reduce in
     // forward (g after the row layer, [batch, 32]); none in backward (f before the column layer
     // would sum its input gradient, which the first layer does not compute). No data axis to reduce.
    test::MlpRun c = run_of(1, 2, 0, 2);
    c.clip_norm = 1.0;
    expect_steps(c,
                 {all_reduce(ReduceOp::sum, f32, 256 * 32, 2),
                  all_reduce(ReduceOp::sum, f64, 2, 2),  // Σ x²: split blocks, whole blocks
                  all_reduce(ReduceOp::sum, f64, 3, 1)},
                 "TP");
    // data 2 x model 2, replicated over data: the gradients of each kind all-reduced over data.
    c.data_parallel = 2;
    const std::int64_t split = round_up(784 * 32 + 32 + 32 * 32, 16), whole = round_up(32 + 32 * 10 + 10, 16);
    expect_steps(c,
                 {all_reduce(ReduceOp::sum, f32, 128 * 32, 2), all_reduce(ReduceOp::mean, f32, split, 2),
                  all_reduce(ReduceOp::mean, f32, whole, 2), all_reduce(ReduceOp::sum, f64, 2, 2),
                  all_reduce(ReduceOp::sum, f64, 3, 2)},
                 "DP x TP");
    // data 2 x model 2 with FSDP over data: per layer its units in key order (dense_1's whole bias,
    // then its split kernel).
    c.zero_stage = 3;
    const std::int64_t l0 = round_up(784 * 32 + 32, 32), l1k = round_up(32 * 32, 32), l1b = round_up(32, 32),
                       l2 = round_up(32 * 10 + 10, 32);
    expect_steps(c,
                 {all_gather(l0 / 2, 2), all_gather(l1b / 2, 2), all_gather(l1k / 2, 2),
                  all_reduce(ReduceOp::sum, f32, 128 * 32, 2), all_gather(l2 / 2, 2),
                  reduce_scatter(l2, 2), all_gather(l1b / 2, 2), all_gather(l1k / 2, 2), reduce_scatter(l1b, 2),
                  reduce_scatter(l1k, 2), reduce_scatter(l0, 2),
                  all_reduce(ReduceOp::sum, f64, 2, 4),  // over data and model
                  all_reduce(ReduceOp::sum, f64, 3, 2)},
                 "DP x TP, FSDP");
  }
}

// ---- bytes per device ----------------------------------------------------------------------------

// The default model, 784-512-512-10: per layer its kernel and bias element counts, and which of
// them tensor parallelism splits (column: both; row: the kernel; the classifier: neither).
struct Leaf {
  std::int64_t numel;
  bool split;
};
std::vector<std::vector<Leaf>> default_model_leaves(int model) {
  const bool tp = model > 1;
  return {{{784 * 512, tp}, {512, tp}}, {{512 * 512, tp}, {512, false}}, {{512 * 10, false}, {10, false}}};
}

test::MlpRun default_model_run(int data, int model, int stage) {
  test::MlpRun c = run_of(data, model, stage, 1);
  c.hidden = {512, 512};
  return c;
}

// Per-device bytes read from the buffers the devices hold (TrainInfo::bytes_per_device), against
// the element counts of the model above: under tensor parallelism the split leaves are 1/M, under
// FSDP everything is 1/N plus one layer in flight; Adam keeps two moments per owned element.
// Padding: at most 16 N floats per unit, at most two units per layer.
TEST(Layouts, BytesPerDeviceAreTheShardsOfTheLayout) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  const auto leaves = default_model_leaves(1);
  std::int64_t all = 0, largest_layer = 0;
  for (const auto& layer : leaves) {
    std::int64_t n = 0;
    for (const Leaf& leaf : layer) n += leaf.numel;
    all += n;
    largest_layer = std::max(largest_layer, n);
  }
  const std::int64_t replicated = 4 * all;
  const TrainReport dp = train(default_model_run(2, 1, 0));
  const DeviceBytes base = dp.info.bytes_per_device;
  EXPECT_NEAR(base.params, replicated, 4 * 16);
  EXPECT_NEAR(base.grads, replicated, 4 * 16);
  EXPECT_NEAR(base.optimizer, 2 * replicated, 2 * 4 * 16 + 8);  // + Adam's step count
  EXPECT_EQ(base.in_flight, 0);

  for (int M : {2, 4}) {
    std::int64_t split = 0, whole = 0;
    for (const auto& layer : default_model_leaves(M))
      for (const Leaf& leaf : layer) (leaf.split ? split : whole) += leaf.numel;
    const DeviceBytes tp = train(default_model_run(1, M, 0)).info.bytes_per_device;
    const std::int64_t pad = 4 * 2 * 16;
    EXPECT_NEAR(tp.params, 4 * (split / M + whole), pad) << M;
    EXPECT_NEAR(tp.grads, 4 * (split / M + whole), pad) << M;
    EXPECT_NEAR(tp.optimizer, 2 * 4 * (split / M + whole), 2 * pad + 8) << M;
    const double split_ratio = static_cast<double>(tp.params - 4 * whole) / (4.0 * split);
    EXPECT_NEAR(split_ratio, 1.0 / M, 1e-3) << M;
    std::printf("TP model %d: parameters %lld bytes per device (replicated %lld); the split layers' share %.4f\n", M,
                static_cast<long long>(tp.params), static_cast<long long>(replicated), split_ratio);
  }
  for (int N : {2, 4}) {
    const std::int64_t pad = 4 * 3 * 16 * N / N;  // a slice of each of three units' padding
    const DeviceBytes fsdp = train(default_model_run(N, 1, 3)).info.bytes_per_device;
    EXPECT_NEAR(fsdp.params, replicated / N, pad) << N;
    EXPECT_NEAR(fsdp.grads, replicated / N, pad) << N;
    EXPECT_NEAR(fsdp.optimizer, 2 * replicated / N, 2 * pad + 8) << N;
    // One layer in flight: its gathered parameters and its whole gradients.
    EXPECT_NEAR(fsdp.in_flight, 2 * 4 * largest_layer, 2 * 4 * 16 * N) << N;
    std::printf("FSDP data %d: parameters + gradients + optimizer %lld bytes per device (replicated %lld, ratio %.4f); "
                "in flight %lld\n",
                N, static_cast<long long>(fsdp.params + fsdp.grads + fsdp.optimizer),
                static_cast<long long>(base.params + base.grads + base.optimizer),
                static_cast<double>(fsdp.params + fsdp.grads + fsdp.optimizer) /
                    static_cast<double>(base.params + base.grads + base.optimizer),
                static_cast<long long>(fsdp.in_flight));
    const DeviceBytes z1 = train(default_model_run(N, 1, 1)).info.bytes_per_device;
    EXPECT_NEAR(z1.params, replicated, 4 * 16 * N);
    EXPECT_NEAR(z1.grads, replicated + replicated / N, 2 * 4 * 16 * N);  // whole, and the reduced slice
    EXPECT_NEAR(z1.optimizer, 2 * replicated / N, 2 * 4 * 16 + 8);
    const DeviceBytes z2 = train(default_model_run(N, 1, 2)).info.bytes_per_device;
    EXPECT_NEAR(z2.params, replicated, 3 * 4 * 16 * N);
    EXPECT_NEAR(z2.grads, replicated / N, pad);
    EXPECT_NEAR(z2.in_flight, 4 * largest_layer, 4 * 16 * N);  // one layer's whole gradients
  }
  // Both: FSDP over data 2 of the tensor-parallel blocks of model 2.
  std::int64_t split = 0, whole = 0;
  for (const auto& layer : default_model_leaves(2))
    for (const Leaf& leaf : layer) (leaf.split ? split : whole) += leaf.numel;
  const DeviceBytes both = train(default_model_run(2, 2, 3)).info.bytes_per_device;
  EXPECT_NEAR(both.params, 4 * (split / 2 + whole) / 2, 4 * 5 * 16);
}

}  // namespace
}  // namespace datarax::train
