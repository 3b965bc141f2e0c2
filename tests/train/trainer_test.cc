// The data-parallel trainer on the real Fashion-MNIST data (Debian's dataset-fashion-mnist, which
// the dependency script installs; run by hand without it, the tests skip, saying why; under the
// test command they fail).
#include "datarax/train/trainer.h"
#include "datarax/nn/models/mlp.h"
#include "train/mlp_run.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <filesystem>
#include <mutex>
#include <thread>

#include "datarax/communicator.h"
#include "datarax/device_discovery.h"
#include "datarax/io/safetensors.h"
#include "datarax/nn/matmul_kernel.h"
#include "datarax/nn/precision.h"
#include "datarax/optim/optimizer.h"
#include "io/test_files.h"
#include "support/collective_log.h"
#include "support/error_of.h"
#include "support/idx_bytes.h"
#include "support/skip.h"

namespace datarax::train {
namespace {

using ::testing::HasSubstr;

test::MlpRun small_run(int devices, std::int64_t steps) {
  test::MlpRun c;
  c.data_parallel = devices;
  c.steps = steps;
  c.hidden = {64, 32};
  c.batch_size = 256;
  c.seed = 3;
  c.schedule = "constant";  // no warmup: 50 steps must show learning
  return c;
}

// Equivalence: the same seed and global batch on 1, 2, 4 and 8 devices give the same per-step
// losses (to 1e-5 relative) for 50 steps: data parallelism changes where the work runs, not what
// is computed (the gradient mean over devices equals the full batch's mean).
TEST(Trainer, SameLossesOnOneTwoFourAndEightDevices) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  const TrainReport one = train(small_run(1, 50));
  ASSERT_EQ(one.steps.size(), 50u);
  EXPECT_LT(one.steps.back().loss, one.steps.front().loss * 0.5);  // it learns
  for (int n : {2, 4, 8}) {
    const TrainReport many = train(small_run(n, 50));
    ASSERT_EQ(many.steps.size(), 50u);
    double worst = 0;
    for (std::size_t s = 0; s < 50; ++s) {
      const double rel = std::abs(many.steps[s].loss - one.steps[s].loss) / std::abs(one.steps[s].loss);
      worst = std::max(worst, rel);
      EXPECT_LT(rel, 1e-5) << n << " devices, step " << s + 1;
      EXPECT_EQ(many.steps[s].step, static_cast<std::int64_t>(s + 1));
    }
    std::printf("%d devices: largest relative loss difference to 1 device over 50 steps: %.3g\n", n, worst);
  }
}

// (ZeRO's stages against the replicated step, bitwise: tests/train/layouts_test.cc.)

using test::CollectiveLog;

std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

// The parameters of small_run's MLP 784-64-32-10.
constexpr std::int64_t kParams = 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10;

std::vector<CollectiveLog::Call> log_of(const test::MlpRun& c) {
  return test::collectives_of([&] { train(c); });
}

// The replicated step reduces all gradients with one all-reduce per bucket (by default one bucket:
// the whole flat buffer), then the step's metrics with one more: the calls are listed from the
// formula for the buffer (the parameter count rounded up to 16 floats) and the bucket size.
TEST(Trainer, ReplicatedStepMakesOneGradientAllReducePerBucket) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  const std::int64_t buffer = round_up(kParams, 16);
  for (std::int64_t bucket_bytes : {std::int64_t{0}, std::int64_t{64} << 10, buffer * 4 - 64}) {
    test::MlpRun c = small_run(2, 3);
    c.zero_stage = 0;  // (bucket_bytes 0 would default to ZeRO-1)
    c.gradient_bucket_bytes = bucket_bytes;
    const std::int64_t per = bucket_bytes == 0 ? buffer : bucket_bytes / 4;
    std::vector<CollectiveLog::Call> step;
    for (std::int64_t at = 0; at < buffer; at += per)
      step.push_back({CollectiveKind::all_reduce, ReduceOp::mean, DType::f32, std::min(per, buffer - at)});
    step.push_back({CollectiveKind::all_reduce, ReduceOp::sum, DType::f64, 3});  // loss, correct, stop
    std::vector<CollectiveLog::Call> expected;
    for (int s = 0; s < 3; ++s) expected.insert(expected.end(), step.begin(), step.end());
    const auto calls = log_of(c);
    EXPECT_EQ(calls, expected) << "bucket_bytes " << bucket_bytes << ": " << calls.size() << " calls, expected "
                               << expected.size();
    std::printf("bucket_bytes %lld: %zu gradient collectives per step\n", static_cast<long long>(bucket_bytes),
                step.size() - 1);
  }
}

// ZeRO-1 shares the step: one reduce-scatter of the whole gradient buffer, the clip norm's sum of
// squares over the slices, one all-gather of the updated slices, then the metrics.
TEST(Trainer, ShardedStepMakesOneReduceScatterAndOneAllGather) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  for (int n : {2, 3}) {
    test::MlpRun c = small_run(n, 2);
    c.batch_size = 6 * 40;
    c.zero_stage = 1;
    c.clip_norm = 1.0;
    const std::int64_t buffer = round_up(kParams, 16 * n);
    const std::vector<CollectiveLog::Call> step = {
        {CollectiveKind::reduce_scatter, ReduceOp::mean, DType::f32, buffer},
        {CollectiveKind::all_reduce, ReduceOp::sum, DType::f64, 1},
        {CollectiveKind::all_gather, ReduceOp::sum, DType::f32, buffer / n},
        {CollectiveKind::all_reduce, ReduceOp::sum, DType::f64, 3}};
    std::vector<CollectiveLog::Call> expected = step;
    expected.insert(expected.end(), step.begin(), step.end());
    EXPECT_EQ(log_of(c), expected) << n << " devices";
  }
}

// TrainConfig::time_phases: every step reports where the first device's time went (the matrix
// products, the loss, the collectives, the optimizer are never free); without it the phases are zeros.
TEST(Trainer, PhaseTimesAreReportedOnlyWhenAsked) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  for (const int stage : {0, 3}) {
    test::MlpRun c = small_run(2, 6);
    c.zero_stage = stage;
    const TrainReport off = train(c);
    for (const StepMetrics& m : off.steps)
      for (double s : m.phase_seconds) EXPECT_EQ(s, 0.0) << "step " << m.step;
    c.time_phases = true;
    const TrainReport on = train(c);
    ASSERT_EQ(on.steps.size(), 6u);
    for (const StepMetrics& m : on.steps) {
      for (double s : m.phase_seconds) EXPECT_GE(s, 0.0);
      // (The ReLU MLP has no elementwise phase: its ReLUs are fused into the products, linear_relu.)
      for (const Phase p : {Phase::forward_gemm, Phase::loss, Phase::backward_gemm, Phase::collectives, Phase::optimizer,
                            Phase::metrics})
        EXPECT_GT(m.phase_seconds[static_cast<std::size_t>(p)], 0.0)
            << to_string(p) << " at step " << m.step << ", stage " << stage;
    }
    // Timing changes nothing computed.
    ASSERT_EQ(on.steps.size(), off.steps.size());
    for (std::size_t i = 0; i < on.steps.size(); ++i) EXPECT_EQ(on.steps[i].loss, off.steps[i].loss);
  }
}

// The default ZeRO stage: 1 on a data axis of several devices of this process without gradient
// buckets, 0 otherwise — and the default gives, bit for bit, what the replicated step gives (with
// and without clipping), holding half the optimizer state per device on 2 devices.
TEST(Trainer, DefaultZeroStageIsOneOnSeveralLocalDevicesAndExact) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  struct Case {
    int devices;
    std::int64_t bucket_bytes;
    std::string layout;
  };
  for (const Case& k : {Case{2, 0, "data 2, ZeRO stage 1 (optimizer state sharded) by default"},
                        Case{3, 0, "data 3, ZeRO stage 1 (optimizer state sharded) by default"},
                        Case{1, 0, "data 1, replicated"}, Case{2, 64 << 10, "data 2, replicated"}})
    for (const std::optional<double> clip : {std::optional<double>(), std::optional<double>(0.5)}) {
      test::MlpRun c = small_run(k.devices, 8);
      c.batch_size = 240;  // divisible by 2 and 3
      c.gradient_bucket_bytes = k.bucket_bytes;
      c.clip_norm = clip;
      const TrainReport by_default = train(c);
      EXPECT_EQ(by_default.info.layout, k.layout);
      c.zero_stage = 0;
      const TrainReport replicated = train(c);
      EXPECT_EQ(replicated.info.layout, "data " + std::to_string(k.devices) + ", replicated");
      ASSERT_EQ(by_default.steps.size(), replicated.steps.size());
      for (std::size_t i = 0; i < replicated.steps.size(); ++i)
        EXPECT_EQ(by_default.steps[i].loss, replicated.steps[i].loss) << k.layout << " step " << i + 1;
      EXPECT_TRUE(bitwise_equal(by_default.params, replicated.params)) << k.layout;
      const std::int64_t n = k.layout.find("ZeRO") != std::string::npos ? k.devices : 1;
      // Adam's two moments, each a 1/n slice of the (padded) flat buffer: at most 16 floats a unit
      // of padding per device.
      EXPECT_LE(by_default.info.bytes_per_device.optimizer,
                replicated.info.bytes_per_device.optimizer / n + 2 * 3 * 16 * 4 + 8)
          << k.layout;
    }
}

// bf16 matrix products (TrainConfig::precision): the default ZeRO-1 layout is still bit for bit the
// replicated step (each device runs the same products on the same rows), the layout line says
// bf16, and the run follows f32's (the same data and initialization; losses within 2%: each product
// carries at most 2^-7 of relative error, tests/nn/precision_test.cc).
TEST(Trainer, Bf16KeepsZeroOneExactAndFollowsF32) {
  DATARAX_NEEDS_FASHION_MNIST();
  if (!nn::cpu_supports(nn::Precision::bf16)) GTEST_SKIP() << "this CPU has no AVX512_BF16 (VDPBF16PS)";
  // The bf16 recipe itself, whatever kernel this CPU's measurement would choose for bf16.
  nn::set_matmul_kernel(nn::Precision::bf16, nn::MatmulKernel::avx512_bf16);
  initialize({.num_cpu_devices = 8});
  test::MlpRun c = small_run(2, 8);
  const TrainReport f32 = train(c);
  c.precision = "bf16";
  const TrainReport by_default = train(c);
  EXPECT_EQ(by_default.info.layout,
            "data 2, ZeRO stage 1 (optimizer state sharded) by default; bf16 matrix products by avx512_bf16 (f32 "
            "parameters, gradients, optimizer)");
  c.zero_stage = 0;
  const TrainReport replicated = train(c);
  ASSERT_EQ(by_default.steps.size(), replicated.steps.size());
  ASSERT_EQ(by_default.steps.size(), f32.steps.size());
  for (std::size_t i = 0; i < replicated.steps.size(); ++i) {
    EXPECT_EQ(by_default.steps[i].loss, replicated.steps[i].loss) << "step " << i + 1;
    EXPECT_NEAR(by_default.steps[i].loss, f32.steps[i].loss, 0.02 * f32.steps[i].loss) << "step " << i + 1;
  }
  EXPECT_NE(by_default.steps.back().loss, f32.steps.back().loss) << "no bf16 rounding seen: did the f32 path run?";
  EXPECT_TRUE(bitwise_equal(by_default.params, replicated.params));
}

// Where bf16 takes an f32 kernel (forced here, as the measurement does on a CPU whose VDPBF16PS is
// no faster than its f32 FMAs), a bf16 run says so and computes f32's products: the very losses of
// the f32 run.
TEST(Trainer, Bf16WithoutAFasterKernelRunsTheF32ProductsAndSaysSo) {
  DATARAX_NEEDS_FASHION_MNIST();
  if (!nn::cpu_supports(nn::Precision::bf16)) GTEST_SKIP() << "this CPU has no AVX512_BF16 (VDPBF16PS)";
  const nn::MatmulKernel f32_kernel =
      nn::cpu_supports(nn::MatmulKernel::avx512) ? nn::MatmulKernel::avx512 : nn::MatmulKernel::openblas;
  nn::set_matmul_kernel(nn::Precision::f32, f32_kernel);
  nn::set_matmul_kernel(nn::Precision::bf16, f32_kernel);
  initialize({.num_cpu_devices = 8});
  test::MlpRun c = small_run(2, 6);
  const TrainReport f32 = train(c);
  c.precision = "bf16";
  const TrainReport bf16 = train(c);
  EXPECT_THAT(bf16.info.layout, ::testing::HasSubstr("bf16 asked, f32 matrix products (forced)"));
  EXPECT_THAT(bf16.info.matmul_kernel, ::testing::HasSubstr(std::string(nn::to_string(f32_kernel))));
  ASSERT_EQ(bf16.steps.size(), f32.steps.size());
  for (std::size_t i = 0; i < f32.steps.size(); ++i) EXPECT_EQ(bf16.steps[i].loss, f32.steps[i].loss) << "step " << i + 1;
  nn::unset_matmul_kernel(nn::Precision::f32);
  nn::unset_matmul_kernel(nn::Precision::bf16);
}

TEST(Trainer, PaddedLastBatchGivesExactMeansAndEpochRows) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  // 60000 = 234 * 256 + 96: without drop_last the 235th batch has 96 real rows and 160 padded.
  test::MlpRun c = small_run(4, 235);
  c.drop_last = false;
  c.epochs = 1;
  const TrainReport r = train(c);
  ASSERT_EQ(r.info.steps_per_epoch, 235);
  ASSERT_EQ(r.epochs.size(), 1u);
  EXPECT_GT(r.epochs[0].test_accuracy, 0.75);
  EXPECT_TRUE(std::isfinite(r.steps.back().loss));
  // Accuracy of the last batch is over its 96 real rows: a multiple of 1/96.
  const double k = r.steps.back().accuracy * 96;
  EXPECT_NEAR(k, std::round(k), 1e-9);
}

TEST(Trainer, SaveAndInitRoundTrip) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  const auto dir = std::filesystem::temp_directory_path() / ("datarax-trainer-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "p.safetensors").string();
  const TrainReport ra = train(small_run(2, 5));
  io::save_safetensors(path, ra.params);
  const Tree saved = io::load_safetensors(path);
  EXPECT_TRUE(bitwise_equal(saved, ra.params));
  // Starting from the saved parameters with SGD at lr 0 keeps them exactly.
  test::MlpRun b = small_run(2, 2);
  b.init_path = path;
  b.optimizer = "sgd";
  b.lr = 1e-30;
  const TrainReport rb = train(b);
  for (const auto& [key, leaf] : saved)
    for (std::size_t i = 0; i < leaf.data<float>().size(); ++i)
      ASSERT_NEAR(rb.params.at(key).data<float>()[i], leaf.data<float>()[i], 1e-6) << key;
  // Wrong shapes: a model with other hidden sizes refuses the file, naming the tensor.
  test::MlpRun c = small_run(2, 1);
  c.init_path = path;
  c.hidden = {32};
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.init_path = " + path + ": tensor \"dense_0/bias\" is f32[64]; the model MLP 784-32-10 (relu) needs f32[32]"));
  std::filesystem::remove_all(dir);
}

// Every observer call comes on the thread that called train(), in order.
TEST(Trainer, ObserverRunsOnTheCallersThread) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  struct Threads final : TrainObserver {
    std::vector<std::thread::id> seen;
    std::vector<std::int64_t> steps;
    void on_start(const TrainInfo&) override { seen.push_back(std::this_thread::get_id()); }
    void on_step(const StepMetrics& m, int, std::int64_t) override {
      seen.push_back(std::this_thread::get_id());
      steps.push_back(m.step);
    }
    void on_finish(const TrainReport&) override { seen.push_back(std::this_thread::get_id()); }
  } threads;
  train(small_run(4, 7), {.observer = &threads});
  ASSERT_EQ(threads.seen.size(), 9u);
  for (const auto& id : threads.seen) EXPECT_EQ(id, std::this_thread::get_id());
  EXPECT_EQ(threads.steps, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7}));
}

// Snapshots every few steps: the state's step counters, its keys (the optimizer's, keyed like the
// parameters), and the same values whether the optimizer state was replicated or sharded.
class EveryNSteps final : public CheckpointPolicy {
 public:
  explicit EveryNSteps(std::int64_t n) : n_(n) {}
  bool due(std::int64_t step) const override { return step % n_ == 0; }
  void save(const TrainState& state) override { saved.push_back(state); }
  std::vector<TrainState> saved;

 private:
  std::int64_t n_;
};

TEST(Trainer, CheckpointPolicySeesTheWholeStateAtItsSteps) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  test::MlpRun c = small_run(3, 9);
  c.batch_size = 6 * 40;
  EveryNSteps replicated(4), sharded(4);
  const TrainReport r = train(c, {.checkpoint = &replicated});
  c.zero_stage = 1;
  train(c, {.checkpoint = &sharded});
  ASSERT_EQ(replicated.saved.size(), 2u);
  ASSERT_EQ(sharded.saved.size(), 2u);
  const nn::Mlp model({.sizes = {784, 64, 32, 10}});
  const Tree init_state = optim::make_optimizer("adam")->init(model.init(0));
  for (std::size_t k = 0; k < 2; ++k) {
    const TrainState& a = replicated.saved[k];
    const TrainState& b = sharded.saved[k];
    EXPECT_EQ(a.step, static_cast<std::int64_t>(4 * (k + 1)));
    EXPECT_EQ(a.epoch, 1);
    EXPECT_EQ(a.step_in_epoch, a.step);
    EXPECT_EQ(b.step, a.step);
    EXPECT_EQ(a.opt_state.keys(), init_state.keys());
    EXPECT_EQ(optim::step_count(a.opt_state), a.step);
    EXPECT_TRUE(bitwise_equal(a.params, b.params)) << k;
    EXPECT_TRUE(bitwise_equal(a.opt_state, b.opt_state)) << k;
  }
  // The snapshot is a copy: later steps do not change it.
  EXPECT_FALSE(bitwise_equal(replicated.saved[1].params, r.params));
}

// A stop request: the step in flight finishes, the policy saves the state, and the report says so.
TEST(Trainer, StopTokenEndsTrainingBetweenStepsWithACheckpoint) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  struct StopAt final : TrainObserver {
    StopToken* token = nullptr;
    void on_step(const StepMetrics& m, int, std::int64_t) override {
      if (m.step == 5) token->request_stop();
    }
  };
  StopToken token;
  StopAt stop_at;
  stop_at.token = &token;
  EveryNSteps never(1000);
  const TrainReport r = train(small_run(2, 100), {.observer = &stop_at, .checkpoint = &never, .stop = &token});
  EXPECT_TRUE(r.stopped);
  // The host runs one step ahead of the one it reports: step 6 was under way at the request.
  ASSERT_EQ(r.steps.size(), 6u);
  ASSERT_EQ(never.saved.size(), 1u);
  EXPECT_EQ(never.saved[0].step, 6);
  EXPECT_TRUE(bitwise_equal(never.saved[0].params, r.params));
}

// An observer that throws ends training with its error (not a device's), and the devices are free
// for the next run.
TEST(Trainer, AnObserverErrorEndsTrainingCleanly) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  struct Throws final : TrainObserver {
    void on_step(const StepMetrics& m, int, std::int64_t) override {
      if (m.step == 3) throw InvalidArgumentError("observer: disk full");
    }
  } throws;
  EXPECT_EQ(test::error_of([&] { train(small_run(4, 50), {.observer = &throws}); }), "observer: disk full");
  EXPECT_EQ(train(small_run(4, 2)).steps.size(), 2u);
}

// Inputs that would train on nonsense are refused before the first step: parameters holding NaN or
// infinities, a test split without examples (whose metrics would be NaN in the JSON).
TEST(Trainer, NonFiniteOrEmptyInputsAreRefused) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  const auto dir = std::filesystem::temp_directory_path() / ("datarax-inputs-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Tree params = train(small_run(2, 1)).params;
  params.at("dense_1/bias").data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  const std::string path = (dir / "nan.safetensors").string();
  io::save_safetensors(path, params);
  test::MlpRun c = small_run(2, 1);
  c.init_path = path;
  EXPECT_THAT(test::error_of([&] { train(c); }),
              HasSubstr("TrainConfig.init_path = " + path + ": tensor \"dense_1/bias\" holds nan at element 3; "
                        "training needs finite numbers"));
  // A data folder whose test split has no examples.
  const auto data = dir / "data";
  std::filesystem::create_directories(data);
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"})
    std::filesystem::create_symlink(std::string(data::kDefaultFashionMnistDir) + "/" + f, data / f);
  test::write_bytes((data / "t10k-images-idx3-ubyte").string(), test::idx_bytes(0x08, {0, 28, 28}, ""));
  test::write_bytes((data / "t10k-labels-idx1-ubyte").string(), test::idx_bytes(0x08, {0}, ""));
  c = small_run(2, 1);
  c.data_dir = data.string();
  EXPECT_THAT(test::error_of([&] { train(c); }),
              HasSubstr("TrainConfig.data_dir = data/test: the test split has no examples"));
  // Non-finite settings.
  c = small_run(2, 1);
  c.lr = std::numeric_limits<double>::infinity();
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.lr = inf: must be a finite number > 0"));
  c = small_run(2, 1);
  c.weight_decay = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.weight_decay = nan: must be a finite number >= 0"));
  std::filesystem::remove_all(dir);
}

TEST(Trainer, BadConfigurationIsRejectedBeforeTraining) {
  initialize({.num_cpu_devices = 8});
  test::MlpRun c = small_run(3, 1);
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.batch_size = 256: not divisible by the data axis (3 devices); use a multiple of 3"));
  c = small_run(2, 1);
  c.optimizer = "rmsprop";
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.optimizer = rmsprop: unknown optimizer; valid: sgd, adam, adamw"));
  c = small_run(2, 1);
  c.data_dir = "/nonexistent/dir";
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("/nonexistent/dir"));
  c = small_run(2, 1);
  c.momentum = 0.9;
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.momentum = 0.9: applies to optimizer sgd only"));
  c = small_run(16, 1);
  EXPECT_THAT(test::error_of([&] { train(c); }),
              HasSubstr("TrainConfig.mesh = data=16: needs 16 devices; the job has 8 (devices per process x processes)"));
  c = small_run(3, 1);
  c.model_parallel = 3;
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.mesh = data=3,model=3: needs 9 devices; the job has 8"));
  c = small_run(1, 1);
  c.data_parallel.reset();
  c.model_parallel = 3;
  EXPECT_THAT(test::error_of([&] { train(c); }),
              HasSubstr("TrainConfig.mesh = data=all,model=3: model=3 does not divide the 8 devices of the job"));
  c = small_run(1, 1);
  c.model_parallel = 4;
  c.hidden = {64, 30};  // layer 1 is a row layer: its input (64) is split, its output (30) is not
  EXPECT_NO_THROW(train(c));
  c.hidden = {62, 32};
  EXPECT_THAT(test::error_of([&] { train(c); }),
              HasSubstr("TrainConfig.hidden = 62,32: Mlp: width 62 (the output of dense_0) is split over a model axis of 4 devices, which do not divide it"));
  c = small_run(2, 1);
  c.zero_stage = 4;
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.zero_stage = 4"));
}

}  // namespace
}  // namespace datarax::train
