// Checkpoints and resume: a run stopped at a checkpoint and resumed computes what the run that
// was never stopped computes — bitwise on the same device count, to rounding on another — and a
// run that computes something else is refused, naming the difference.
#include "datarax/train/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "datarax/device_discovery.h"
#include "io/test_files.h"
#include "train/mlp_run.h"
#include "support/error_of.h"
#include "support/skip.h"

namespace datarax::train {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using test::TempDir;

test::MlpRun small_run(int devices, std::int64_t steps) {
  test::MlpRun c;
  c.data_parallel = devices;
  c.steps = steps;
  c.hidden = {64, 32};
  c.batch_size = 240;  // divisible by 1..6 and 8
  c.seed = 5;
  return c;
}

// Saves the state after step `at` (and nothing else); with a StopToken, also asks the run to stop
// there (the stop's own checkpoint is that same state: not written twice).
class SaveAt final : public CheckpointPolicy {
 public:
  SaveAt(std::string dir, std::int64_t at, StopToken* stop = nullptr) : dir_(std::move(dir)), at_(at), stop_(stop) {}
  bool due(std::int64_t step) const override { return step == at_; }
  void save(const TrainState& state) override {
    if (state.step == saved_) return;
    save_checkpoint(dir_ + "/ckpt-" + std::to_string(state.step), state);
    saved_ = state.step;
    if (stop_ != nullptr) stop_->request_stop();
  }

 private:
  std::string dir_;
  std::int64_t at_;
  StopToken* stop_;
  std::int64_t saved_ = -1;
};

double largest_relative_difference(const std::vector<StepMetrics>& a, const std::vector<StepMetrics>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(a[i].loss - b[i].loss) / std::abs(b[i].loss));
  return worst;
}

double largest_parameter_difference(const Tree& a, const Tree& b) {
  double worst = 0;
  for (const ZipEntry& e : zip(a, b))
    for (std::size_t i = 0; i < e.a.data<float>().size(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(e.a.data<float>()[i] - e.b.data<float>()[i])) /
                                  std::max(1e-3, static_cast<double>(std::abs(e.b.data<float>()[i]))));
  return worst;
}

// 60 steps uninterrupted, against 35 steps (checkpoint, stop) + a resumed run of the other 25, on
// 1, 2 and 4 devices with the optimizer state replicated and sharded (ZeRO 1-3), and
// tensor-parallel (with FSDP too): losses of steps 36..60 and the final parameters bitwise equal.
// The checkpoint is written and read back through its folder.
TEST(Resume, IsBitwiseExactOnTheSameLayout) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  struct Layout {
    int data, model, stage;
  };
  for (const Layout& l : {Layout{1, 1, 0}, Layout{2, 1, 0}, Layout{4, 1, 0}, Layout{2, 1, 1}, Layout{4, 1, 1},
                          Layout{2, 1, 2}, Layout{4, 1, 3}, Layout{1, 2, 0}, Layout{2, 2, 3}}) {
      SCOPED_TRACE("data " + std::to_string(l.data) + " model " + std::to_string(l.model) + " ZeRO " +
                   std::to_string(l.stage));
      TempDir dir;
      test::MlpRun c = small_run(l.data, 60);
      c.model_parallel = l.model;
      c.zero_stage = l.stage;
      c.clip_norm = 2.0;
      const TrainReport whole = train(c);
      StopToken stop;
      SaveAt at35(dir.path().string(), 35, &stop);
      EXPECT_EQ(train(c, {.checkpoint = &at35, .stop = &stop}).final_step, 35);
      const TrainState state = load_checkpoint(dir.file("ckpt-35"));
      EXPECT_EQ(state.step, 35);
      const TrainReport rest = train(c, {.resume = &state});
      ASSERT_EQ(rest.steps.size(), 25u);
      for (std::size_t i = 0; i < 25; ++i) {
        EXPECT_EQ(rest.steps[i].step, static_cast<std::int64_t>(36 + i));
        EXPECT_EQ(rest.steps[i].loss, whole.steps[35 + i].loss) << "step " << 36 + i;
      }
      EXPECT_EQ(rest.final_step, 60);
      EXPECT_TRUE(bitwise_equal(rest.params, whole.params));
    }
}

// Resumed on another device count (4 -> 2, 2 -> 1), another ZeRO stage, or another mesh (data
// parallel -> tensor parallel with FSDP, and back): the same losses to rounding (1e-5 relative),
// as any layout gives — a checkpoint holds whole tensors.
TEST(Resume, ContinuesOnAnotherDeviceCountOrLayout) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  struct Layout {
    int data, model, stage;
  };
  struct Case {
    Layout from, to;
  };
  for (const Case& k : {Case{{4, 1, 0}, {2, 1, 0}}, Case{{2, 1, 0}, {1, 1, 0}}, Case{{4, 1, 1}, {2, 1, 1}},
                        Case{{2, 1, 0}, {3, 1, 1}}, Case{{3, 1, 1}, {1, 1, 0}}, Case{{1, 1, 0}, {2, 2, 3}},
                        Case{{2, 2, 3}, {1, 4, 0}}, Case{{4, 1, 2}, {2, 1, 3}}}) {
    SCOPED_TRACE(std::to_string(k.from.data) + "x" + std::to_string(k.from.model) + " ZeRO " +
                 std::to_string(k.from.stage) + " -> " + std::to_string(k.to.data) + "x" +
                 std::to_string(k.to.model) + " ZeRO " + std::to_string(k.to.stage));
    TempDir dir;
    test::MlpRun c = small_run(k.from.data, 60);
    c.model_parallel = k.from.model;
    c.zero_stage = k.from.stage;
    const TrainReport whole = train(c);
    StopToken stop;
    SaveAt at35(dir.path().string(), 35, &stop);
    train(c, {.checkpoint = &at35, .stop = &stop});
    const TrainState state = load_checkpoint(dir.file("ckpt-35"));
    test::MlpRun d = small_run(k.to.data, 60);
    d.model_parallel = k.to.model;
    d.zero_stage = k.to.stage;
    const TrainReport rest = train(d, {.resume = &state});
    const std::vector<StepMetrics> tail(whole.steps.begin() + 35, whole.steps.end());
    ASSERT_EQ(rest.steps.size(), tail.size());
    const double losses = largest_relative_difference(rest.steps, tail);
    const double params = largest_parameter_difference(rest.params, whole.params);
    EXPECT_LT(losses, 1e-5);
    EXPECT_LT(params, 1e-4);
    std::printf("%dx%d ZeRO %d -> %dx%d ZeRO %d: largest relative loss difference %.3g, parameter %.3g\n", k.from.data,
                k.from.model, k.from.stage, k.to.data, k.to.model, k.to.stage, losses, params);
  }
}

// A stop at an epoch's end, before its evaluation, resumes into that evaluation: the epoch rows
// of a run stopped and resumed equal those of the run never stopped.
TEST(Resume, EpochRowsContinueExactly) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  TempDir dir;
  test::MlpRun c = small_run(2, 0);
  c.steps.reset();
  c.epochs = 2;
  c.batch_size = 2000;  // 30 steps per epoch
  const TrainReport whole = train(c);
  ASSERT_EQ(whole.epochs.size(), 2u);
  for (std::int64_t at : {std::int64_t{30}, std::int64_t{41}}) {
    SaveAt save(dir.path().string(), at);
    train(c, {.checkpoint = &save});
    const TrainState state = load_checkpoint(dir.file("ckpt-" + std::to_string(at)));
    const TrainReport rest = train(c, {.resume = &state});
    ASSERT_FALSE(rest.epochs.empty()) << at;
    const EpochMetrics& got = rest.epochs.back();
    const EpochMetrics& want = whole.epochs.back();
    EXPECT_EQ(got.train_loss, want.train_loss) << at;
    EXPECT_EQ(got.train_accuracy, want.train_accuracy) << at;
    EXPECT_EQ(got.test_loss, want.test_loss) << at;
    EXPECT_EQ(rest.epochs.size(), at == 30 ? 2u : 1u);
  }
}

// A run that would compute something else is refused before any step, naming the difference.
TEST(Resume, RefusesAnotherDataSetModelOrOptimizer) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  TempDir dir;
  SaveAt at5(dir.path().string(), 5);
  train(small_run(2, 10), {.checkpoint = &at5});
  const TrainState state = load_checkpoint(dir.file("ckpt-5"));
  auto refusal = [&](auto change) {
    test::MlpRun c = small_run(2, 10);
    change(c);
    return test::error_of([&] { train(c, {.resume = &state}); });
  };
  EXPECT_THAT(refusal([](test::MlpRun& c) { c.optimizer = "sgd"; }),
              HasSubstr("TrainConfig.optimizer = sgd: the checkpoint was trained with optimizer adam; resuming needs the same optimizer"));
  EXPECT_THAT(refusal([](test::MlpRun& c) { c.lr = 0.01; }), HasSubstr("TrainConfig.lr = 0.01: the checkpoint was trained with lr 0.001"));
  EXPECT_THAT(refusal([](test::MlpRun& c) { c.hidden = {64}; }), HasSubstr("TrainConfig.hidden = 64: the checkpoint was trained with model MLP 784-64-32-10 (relu); resuming needs the same model"));
  EXPECT_THAT(refusal([](test::MlpRun& c) { c.precision = "bf16"; }), HasSubstr("the checkpoint was trained with precision f32"));
  EXPECT_THAT(refusal([](test::MlpRun& c) { c.seed = 6; }), HasSubstr("TrainConfig.seed = 6: the checkpoint was trained with seed 5"));
  EXPECT_THAT(refusal([](test::MlpRun& c) { c.batch_size = 120; }), HasSubstr("TrainConfig.batch_size = 120"));
  // The data: another data set of the same shape (the test split as training data) differs in its
  // checksums.
  TempDir data;
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"})
    fs::copy(std::string(data::kDefaultFashionMnistDir) + "/" + (std::string("t10k") + (f + 5)), data.file(f));
  for (const char* f : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    fs::copy(std::string(data::kDefaultFashionMnistDir) + "/" + f, data.file(f));
  EXPECT_THAT(refusal([&](test::MlpRun& c) { c.data_dir = data.path().string(); }),
              AllOf(HasSubstr("TrainConfig.data_dir = "), HasSubstr("resuming needs the same data")));
  // Any device count is fine.
  EXPECT_EQ(train(small_run(3, 10), {.resume = &state}).steps.size(), 5u);
}

// The folder policy: a checkpoint every N steps, the newest K kept, the latest found.
TEST(CheckpointDir, KeepsTheNewestAndFindsTheLatest) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  TempDir dir;
  EXPECT_EQ(latest_checkpoint(dir.path().string()), "");
  CheckpointDir policy(dir.path().string(), 4, 2);
  train(small_run(2, 18), {.checkpoint = &policy});
  // (and the folder's record of its run, and its lock)
  EXPECT_THAT(dir.entries(), ElementsAre("ckpt-12", "ckpt-16", "datarax-run.json", "datarax.lock"));
  EXPECT_EQ(latest_checkpoint(dir.path().string()), dir.file("ckpt-16"));
  EXPECT_EQ(policy.last_saved(), dir.file("ckpt-16"));
  // Something that only looks like a checkpoint is not one.
  fs::create_directory(dir.file("ckpt-99"));                         // no manifest: not committed
  test::write_bytes(dir.file("ckpt-98"), "a file");                 // not a folder
  fs::create_directory(dir.file("ckpt-x"));
  EXPECT_EQ(latest_checkpoint(dir.path().string()), dir.file("ckpt-16"));
  EXPECT_THAT(test::error_of([] { CheckpointDir("/proc/datarax-no-such-place", 1); }), HasSubstr("checkpoint folder"));
  EXPECT_THAT(test::error_of([&] { CheckpointDir(dir.path().string(), 0); }), HasSubstr("every = 0 steps; valid: 1 or more"));
}

// Reading a damaged checkpoint names the file and the problem.
TEST(LoadCheckpoint, NamesWhatIsWrong) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  TempDir dir;
  SaveAt at3(dir.path().string(), 3);
  train(small_run(1, 3), {.checkpoint = &at3});
  const std::string ckpt = dir.file("ckpt-3");
  const std::string manifest = test::read_bytes(ckpt + "/manifest.json");
  auto with_manifest = [&](const std::string& text) {
    test::write_bytes(ckpt + "/manifest.json", text);
    return test::error_of([&] { load_checkpoint(ckpt); });
  };
  EXPECT_THAT(with_manifest("{"), HasSubstr("manifest.json\": not JSON"));
  EXPECT_THAT(with_manifest("[]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(with_manifest("{\"format\": \"x\"}"), HasSubstr("\"format\" is not \"datarax-checkpoint\""));
  std::string bad_step = manifest;
  bad_step.replace(bad_step.find("\"step\": 3"), 9, "\"step\": -3");
  EXPECT_THAT(with_manifest(bad_step), HasSubstr("\"step\" = -3 is out of range"));
  test::write_bytes(ckpt + "/manifest.json", manifest);
  fs::resize_file(ckpt + "/optimizer.safetensors", 100);
  EXPECT_THAT(test::error_of([&] { load_checkpoint(ckpt); }), HasSubstr("optimizer.safetensors"));
  EXPECT_THAT(test::error_of([&] { load_checkpoint(dir.file("nothing")); }), HasSubstr("is not a checkpoint folder"));
}

// A tiny training state of `step` steps (no training needed): what CheckpointDir writes.
TrainState tiny_state(std::int64_t step, std::int64_t per_epoch = 4) {
  TrainState s;
  s.step = step;
  s.steps_per_epoch = per_epoch;
  s.epoch = static_cast<int>(step / per_epoch) + 1;
  s.step_in_epoch = step % per_epoch;
  s.epoch_count = static_cast<double>(s.step_in_epoch) * 10;
  s.epoch_correct = s.epoch_count / 2;
  s.epoch_loss = s.epoch_count;
  s.params = Tree{{"w", Array::full({3}, 0.5f)}};
  s.opt_state = Tree{{"count", Array::scalar<std::int64_t>(step)}};
  return s;
}

// A folder belongs to one run: its lock keeps a second run out until the first ends; a fresh run
// is refused where checkpoints are; a resume must continue the latest; --keep deletes only its
// own run's; a symbolic link to a folder is the folder.
TEST(CheckpointDir, BelongsToOneRun) {
  initialize({.num_cpu_devices = 8});
  TempDir dir;
  const std::string d = dir.file("ck");
  {
    CheckpointDir first(d, 1, 2);
    EXPECT_EQ(first.run().size(), 32u);
    EXPECT_THAT(test::error_of([&] { CheckpointDir(d, 1, 2); }),
                AllOf(HasSubstr("checkpoint_dir"), HasSubstr("in use by another run (process "), HasSubstr("on host ")));
    for (std::int64_t step : {1, 2, 3}) first.save(tiny_state(step));
    EXPECT_THAT(dir.entries(), ElementsAre("ck"));
    EXPECT_TRUE(fs::exists(d + "/ckpt-2") && fs::exists(d + "/ckpt-3") && !fs::exists(d + "/ckpt-1"));
  }  // the lock is released with the run
  EXPECT_THAT(test::error_of([&] { CheckpointDir(d, 1, 2); }),
              AllOf(HasSubstr("holds checkpoints of another run (ckpt-2 .. ckpt-3"), HasSubstr("resuming its latest")));
  const TrainState at2 = load_checkpoint(d + "/ckpt-2");
  EXPECT_THAT(test::error_of([&] { CheckpointDir(d, 1, 2, &at2, d + "/ckpt-2"); }),
              AllOf(HasSubstr("TrainConfig.resume"), HasSubstr("not the latest checkpoint"), HasSubstr("ckpt-3 is")));
  // Another run's checkpoint in the folder (an older step) is never deleted by --keep.
  TrainState foreign = tiny_state(1);
  foreign.run = "ab";
  save_checkpoint(d + "/ckpt-1", foreign);
  const TrainState at3 = load_checkpoint(d + "/ckpt-3");
  {
    CheckpointDir resumed(d, 1, 1, &at3, d + "/ckpt-3");
    EXPECT_EQ(resumed.run(), at3.run);
    resumed.save(tiny_state(3));  // the step resumed: not written again
    resumed.save(tiny_state(4));
    resumed.save(tiny_state(5));
  }
  EXPECT_TRUE(fs::exists(d + "/ckpt-1") && fs::exists(d + "/ckpt-5") && !fs::exists(d + "/ckpt-4") &&
              !fs::exists(d + "/ckpt-3") && !fs::exists(d + "/ckpt-2"));
  EXPECT_EQ(load_checkpoint(d + "/ckpt-1").run, "ab");
  // A symbolic link to a folder.
  fs::create_directory(dir.file("real"));
  fs::create_directory_symlink(dir.file("real"), dir.file("link"));
  CheckpointDir linked(dir.file("link"), 1, 2);
  linked.save(tiny_state(1));
  EXPECT_TRUE(fs::exists(dir.file("real") + "/ckpt-1/manifest.json"));
  EXPECT_EQ(checkpoint_folder_holding(dir.file("link") + "/ckpt-1/x"), dir.file("real") + "/ckpt-1");
  EXPECT_EQ(checkpoint_folder_holding(dir.file("real") + "/x"), dir.file("real"));
  EXPECT_EQ(checkpoint_folder_holding(dir.file("x")), "");
}

// A checkpoint verifies itself: its files' sizes and checksums, its manifest's counters against
// each other, the optimizer's count against the step; each refusal names the file.
TEST(LoadCheckpoint, VerifiesItself) {
  initialize({.num_cpu_devices = 8});
  TempDir dir;
  const std::string ckpt = dir.file("ckpt-6");
  save_checkpoint(ckpt, tiny_state(6));
  EXPECT_EQ(load_checkpoint(ckpt).step, 6);
  const std::string manifest = test::read_bytes(ckpt + "/manifest.json");
  auto edited = [&](const std::string& from, const std::string& to) {
    std::string text = manifest;
    text.replace(text.find(from), from.size(), to);
    test::write_bytes(ckpt + "/manifest.json", text);
    const std::string e = test::error_of([&] { load_checkpoint(ckpt); });
    test::write_bytes(ckpt + "/manifest.json", manifest);
    return e;
  };
  EXPECT_THAT(edited("\"epoch\": 2", "\"epoch\": 99"),
              AllOf(HasSubstr("manifest.json\": \"epoch\" 99 and \"step_in_epoch\" 2 do not match \"step\" 6")));
  EXPECT_THAT(edited("\"steps_per_epoch\": 4", "\"steps_per_epoch\": 5"), HasSubstr("do not match \"step\" 6"));
  EXPECT_THAT(edited("\"correct\": 10.0", "\"correct\": 30.0"), HasSubstr("\"correct\" 30 exceeds \"count\" 20"));
  EXPECT_THAT(edited("\"name\": \"params.safetensors\"", "\"name\": \"../x\""), HasSubstr("\"files\".\"params\".\"name\""));
  EXPECT_THAT(edited("\"format_version\": 2", "\"format_version\": 1"), HasSubstr("format_version 1; this library reads 2"));
  // A flipped byte in a tensor file, and a file cut short: refused, naming it.
  const std::string params = test::read_bytes(ckpt + "/params.safetensors");
  std::string flipped = params;
  flipped[flipped.size() - 1] ^= 1;
  test::write_bytes(ckpt + "/params.safetensors", flipped);
  EXPECT_THAT(test::error_of([&] { load_checkpoint(ckpt); }),
              AllOf(HasSubstr("params.safetensors\": its XXH3-64 checksum is"), HasSubstr("the file is damaged")));
  test::write_bytes(ckpt + "/params.safetensors", params.substr(0, params.size() - 1));
  EXPECT_THAT(test::error_of([&] { load_checkpoint(ckpt); }), HasSubstr("params.safetensors\": " + std::to_string(params.size() - 1) + " bytes"));
  // The optimizer's update count against the step (a consistent manifest over another state).
  TempDir other;
  TrainState wrong = tiny_state(6);
  wrong.opt_state = Tree{{"count", Array::scalar<std::int64_t>(5)}};
  save_checkpoint(other.file("ckpt-6"), wrong);
  EXPECT_THAT(test::error_of([&] { load_checkpoint(other.file("ckpt-6")); }),
              HasSubstr("optimizer.safetensors\": the optimizer has made 5 updates; the manifest's \"step\" is 6"));
}

// A loss that becomes non-finite stops training with the step, and saves nothing after it.
TEST(Train, ANonFiniteLossStopsNamingTheStep) {
  DATARAX_NEEDS_FASHION_MNIST();
  initialize({.num_cpu_devices = 8});
  TempDir dir;
  test::MlpRun c = small_run(2, 50);
  c.optimizer = "sgd";
  c.schedule = "constant";
  c.lr = 1e5;  // diverges within a few steps
  CheckpointDir policy(dir.path().string(), 1, 100);
  const std::string message = test::error_of([&] { train(c, {.checkpoint = &policy}); });
  EXPECT_THAT(message, HasSubstr("train: the loss is "));
  EXPECT_THAT(message, HasSubstr("stopping, and saving nothing over the last checkpoint"));
  const std::size_t at = message.find(" at step ") + 9;
  const std::int64_t bad_step = std::stoll(message.substr(at));
  // Every checkpoint is of a step before the bad one.
  for (const auto& name : dir.entries())
    if (name.rfind("ckpt-", 0) == 0) {
      EXPECT_LT(std::stoll(name.substr(5)), bad_step) << name;
    }
}

}  // namespace
}  // namespace datarax::train
