// The example model of examples/custom_model.cc — a user's own modules and op (swish), from
// public headers only — trained by the trainer allocates nothing per step once warmed up, on
// 1 device and every 2-device layout, as the built-in models do (bench/model_steps). The example's
// own file is compiled in here, its main renamed, so that what is counted is that very model.
#define main custom_model_example_main
#include "../../examples/custom_model.cc"
#undef main

#include <gtest/gtest.h>

#include "datarax/device_discovery.h"

#ifdef DATARAX_COUNT_MALLOCS
#include "train/count_mallocs.h"
#endif

namespace {

namespace train = datarax::train;

#ifdef DATARAX_COUNT_MALLOCS
// The process's allocation count after each step.
struct CountPerStep final : train::TrainObserver {
  std::vector<long long> after;
  CountPerStep() { after.reserve(128); }
  void on_step(const train::StepMetrics&, int, std::int64_t) override { after.push_back(datarax::test::malloc_count()); }
};
#endif

TEST(ExampleModel, AllocatesNothingPerStepAfterWarmUpOnEveryLayout) {
#ifndef DATARAX_COUNT_MALLOCS
  GTEST_SKIP() << "counting allocations interposes glibc's malloc, which a sanitizer build's runtime owns";
#else
  datarax::initialize({.num_cpu_devices = 2});
  const Classifier model;
  const train::Model trainable =
      train::classifier(model, [&](const VarTree& p, Var x) { return model(p, x); }, "custom classifier");
  const datarax::data::ArrayDataset train_set = make_dataset(0, 64, "custom/train");
  const datarax::data::ArrayDataset test_set = make_dataset(1000, 8, "custom/test");
  struct Layout {
    const char* name;
    int data, model, stage;
  };
  for (const Layout l : {Layout{"1 device", 1, 1, 0}, Layout{"data 2", 2, 1, 0}, Layout{"data 2, ZeRO-1", 2, 1, 1},
                         Layout{"data 2, FSDP", 2, 1, 3}, Layout{"model 2", 1, 2, 0}}) {
    train::TrainConfig c;
    c.devices = 2;
    c.data_parallel = l.data;
    c.model_parallel = l.model;
    c.zero_stage = l.stage;
    c.batch_size = kBatch;
    c.steps = 40;  // within the first epoch of 64 steps: no evaluation in between
    c.schedule = "constant";
    CountPerStep counts;
    const train::TrainReport r = train::train(trainable, train_set, test_set, c, {.observer = &counts});
    ASSERT_EQ(counts.after.size(), 40u) << l.name;
    // Steps 11..40 against the count after step 10: the first steps size the buffers.
    EXPECT_EQ(counts.after.back() - counts.after[9], 0) << l.name << ": allocations in steps 11..40";
    // The counter counts: the run as a whole allocated (the data, the buffers, the report).
    EXPECT_GT(counts.after.front(), 0) << l.name;
    EXPECT_LT(r.steps.back().loss, r.steps.front().loss) << l.name;
  }
#endif
}

}  // namespace
