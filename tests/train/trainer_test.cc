// The data-parallel trainer on the real Fashion-MNIST data (Debian's dataset-fashion-mnist, which
// the dependency script installs; run by hand without it, the tests skip, saying why; under the
// test command they fail).
#include "datarax/train/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "datarax/device_discovery.h"
#include "datarax/io/safetensors.h"
#include "support/error_of.h"
#include "support/skip.h"

namespace datarax::train {
namespace {

using ::testing::HasSubstr;

TrainConfig small_run(int devices, std::int64_t steps) {
  TrainConfig c;
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

// ZeRO-1 (sharded optimizer state) does element for element the arithmetic of the replicated step:
// the losses and final parameters are bitwise identical, with clipping and AdamW's decay too.
TEST(Trainer, ShardedOptimizerStateIsBitwiseTheReplicatedStep) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  for (int n : {2, 3}) {
    TrainConfig c = small_run(n, 20);
    c.batch_size = 6 * 40;
    c.optimizer = "adamw";
    c.clip_norm = 0.5;
    const TrainReport replicated = train(c);
    c.shard_optimizer_state = true;
    const TrainReport sharded = train(c);
    for (std::size_t s = 0; s < 20; ++s) EXPECT_EQ(sharded.steps[s].loss, replicated.steps[s].loss) << n << " " << s;
    EXPECT_TRUE(bitwise_equal(sharded.params, replicated.params)) << n;
  }
}

TEST(Trainer, PaddedLastBatchGivesExactMeansAndEpochRows) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  // 60000 = 234 * 256 + 96: without drop_last the 235th batch has 96 real rows and 160 padded.
  TrainConfig c = small_run(4, 235);
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
  TrainConfig b = small_run(2, 2);
  b.init_path = path;
  b.optimizer = "sgd";
  b.lr = 1e-30;
  const TrainReport rb = train(b);
  for (const auto& [key, leaf] : saved)
    for (std::size_t i = 0; i < leaf.data<float>().size(); ++i)
      ASSERT_NEAR(rb.params.at(key).data<float>()[i], leaf.data<float>()[i], 1e-6) << key;
  // Wrong shapes: a model with other hidden sizes refuses the file, naming the tensor.
  TrainConfig c = small_run(2, 1);
  c.init_path = path;
  c.hidden = {32};
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("TrainConfig.init_path = " + path + ": tensor \"dense_0/bias\" is f32[64]; the model needs f32[32]"));
  std::filesystem::remove_all(dir);
}

TEST(Trainer, BadConfigurationIsRejectedBeforeTraining) {
  initialize({.num_cpu_devices = 8});
  TrainConfig c = small_run(3, 1);
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
  EXPECT_THAT(test::error_of([&] { train(c); }), HasSubstr("Not enough devices. Data parallelism requires 16 devices, but only 8 are available."));
}

}  // namespace
}  // namespace datarax::train
