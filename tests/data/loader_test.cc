#include "datarax/data/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "datarax/data/permutation.h"
#include "support/error_of.h"

namespace datarax::data {
namespace {

using ::testing::HasSubstr;
using test::error_of;

// Example i has label i and input row {i, -i, i + 0.5}: every row says which example it is.
ArrayDataset numbered(std::int64_t n, std::int64_t features = 3) {
  ArrayDataset d{Array::empty({n, features}), Array::empty({n}, DType::i32), "numbered"};
  for (std::int64_t i = 0; i < n; ++i) {
    d.labels.at<std::int32_t>({i}) = static_cast<std::int32_t>(i);
    for (std::int64_t j = 0; j < features; ++j)
      d.images.at<float>({i, j}) = j == 0 ? float(i) : j == 1 ? -float(i) : float(i) + 0.5f * float(j - 1);
  }
  return d;
}

struct Config {
  std::int64_t n, global_batch;
  int processes;
  bool shuffle, drop_last;
};

std::string describe(const Config& c) {
  return "N=" + std::to_string(c.n) + " B=" + std::to_string(c.global_batch) +
         " P=" + std::to_string(c.processes) + " shuffle=" + std::to_string(c.shuffle) +
         " drop_last=" + std::to_string(c.drop_last);
}

// The naive reference: global position g of an epoch holds example order[g]; process p's row r of
// step s is position s*B + p*B/P + r; positions past N are padding.
void check_epoch(const Config& c, std::int64_t epoch, std::vector<Loader>& loaders,
                 std::vector<Tree>& batches) {
  const ArrayDataset data = numbered(c.n);
  std::vector<std::int64_t> order(static_cast<std::size_t>(c.n));
  std::iota(order.begin(), order.end(), 0);
  if (c.shuffle) order = epoch_permutation(c.n, 17, epoch);
  const std::int64_t b = c.global_batch / c.processes;
  const std::int64_t steps = c.drop_last ? c.n / c.global_batch : (c.n + c.global_batch - 1) / c.global_batch;

  std::vector<int> seen(static_cast<std::size_t>(c.n), 0);
  for (Loader& l : loaders) {
    l.start_epoch(epoch);
    ASSERT_EQ(l.steps_per_epoch(), steps);
  }
  for (std::int64_t s = 0; s < steps; ++s) {
    float mask_total = 0;
    for (int p = 0; p < c.processes; ++p) {
      Tree& batch = batches[static_cast<std::size_t>(p)];
      ASSERT_TRUE(loaders[static_cast<std::size_t>(p)].next(batch)) << "step " << s << " process " << p;
      ASSERT_EQ(batch.at("inputs").shape(), (Shape{b, 3}));
      ASSERT_EQ(batch.at("labels").shape(), (Shape{b}));
      ASSERT_EQ(batch.at("mask").shape(), (Shape{b}));
      ASSERT_EQ(batch.at("count").shape(), Shape{});
      EXPECT_EQ(batch.at("count").item<float>(), float(std::min(c.global_batch, c.n - s * c.global_batch)));
      for (std::int64_t r = 0; r < b; ++r) {
        const std::int64_t g = s * c.global_batch + p * b + r;
        const std::int64_t e = g < c.n ? order[static_cast<std::size_t>(g)] : -1;
        const float mask = batch.at("mask").at<float>({r});
        mask_total += mask;
        if (e >= 0) {
          ++seen[static_cast<std::size_t>(e)];
          EXPECT_EQ(batch.at("labels").at<std::int32_t>({r}), e);
          EXPECT_EQ(mask, 1.0f);
          for (std::int64_t j = 0; j < 3; ++j)
            EXPECT_EQ(batch.at("inputs").at<float>({r, j}), data.images.at<float>({e, j}));
        } else {
          EXPECT_EQ(batch.at("labels").at<std::int32_t>({r}), 0);
          EXPECT_EQ(mask, 0.0f);
          for (std::int64_t j = 0; j < 3; ++j) EXPECT_EQ(batch.at("inputs").at<float>({r, j}), 0.0f);
        }
      }
    }
    // The processes' masks add up to the global count: the slices partition the global batch.
    EXPECT_EQ(mask_total, batches[0].at("count").item<float>());
  }
  for (int p = 0; p < c.processes; ++p) {
    Tree before = batches[static_cast<std::size_t>(p)];
    EXPECT_FALSE(loaders[static_cast<std::size_t>(p)].next(batches[static_cast<std::size_t>(p)]));
    EXPECT_TRUE(bitwise_equal(before, batches[static_cast<std::size_t>(p)]));
  }
  // Each example at most once; all of them without drop_last.
  const std::int64_t used = c.drop_last ? steps * c.global_batch : c.n;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), used);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), c.n - used);
}

TEST(Loader, SweepOfSizesBatchesAndProcesses) {
  for (std::int64_t n : {0, 1, 5, 12, 23})
    for (std::int64_t global_batch : {1, 2, 4, 6, 12})
      for (int processes : {1, 2, 3, 4})
        for (bool shuffle : {false, true})
          for (bool drop_last : {true, false}) {
            if (global_batch % processes != 0) continue;
            const Config c{n, global_batch, processes, shuffle, drop_last};
            SCOPED_TRACE(describe(c));
            const ArrayDataset data = numbered(n);
            std::vector<Loader> loaders;
            for (int p = 0; p < processes; ++p)
              loaders.emplace_back(data, LoaderOptions{.global_batch = global_batch, .seed = 17,
                                                       .shuffle = shuffle, .drop_last = drop_last,
                                                       .part_index = p, .part_count = processes});
            // One batch tree per process, reused across steps and epochs: stale rows would show.
            std::vector<Tree> batches(static_cast<std::size_t>(processes));
            for (std::int64_t epoch : {0, 1, 0}) check_epoch(c, epoch, loaders, batches);
            if (HasFatalFailure()) return;
          }
}

std::vector<Tree> epoch_batches(Loader& loader, std::int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Tree> out;
  for (Tree t; loader.next(t); t = Tree{}) out.push_back(t);
  return out;
}

bool same_batches(const std::vector<Tree>& a, const std::vector<Tree>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!bitwise_equal(a[i], b[i])) return false;
  return true;
}

TEST(Loader, OrderDependsOnlyOnSeedAndEpoch) {
  const ArrayDataset data = numbered(100);
  const LoaderOptions options{.global_batch = 10, .seed = 3};
  Loader a(data, options), b(data, options);
  Loader other_seed(data, {.global_batch = 10, .seed = 4});
  EXPECT_TRUE(same_batches(epoch_batches(a, 2), epoch_batches(b, 2)));
  EXPECT_FALSE(same_batches(epoch_batches(a, 2), epoch_batches(a, 3)));
  EXPECT_FALSE(same_batches(epoch_batches(a, 2), epoch_batches(other_seed, 2)));
  EXPECT_TRUE(same_batches(epoch_batches(a, 2), epoch_batches(b, 2)));  // after other epochs too
}

TEST(Loader, NextReusesTheBatchBuffers) {
  const ArrayDataset data = numbered(100, 784);
  Loader loader(data, {.global_batch = 8, .part_index = 1, .part_count = 2});
  Tree batch{{"inputs", Array::zeros({3})}, {"other", Array::zeros({2})}};  // inputs: wrong shape
  const void* other = batch.at("other").raw();
  ASSERT_TRUE(loader.next(batch));
  EXPECT_EQ(batch.at("inputs").shape(), (Shape{4, 784}));
  EXPECT_EQ(batch.at("inputs").dtype(), DType::f32);
  EXPECT_EQ(batch.at("labels").dtype(), DType::i32);
  EXPECT_EQ(batch.at("other").raw(), other);
  std::map<std::string, const void*> buffers;
  for (const auto& [key, leaf] : batch) buffers[key] = leaf.raw();
  int steps = 1;
  for (std::int64_t epoch : {0, 1, 2}) {
    if (epoch > 0) loader.start_epoch(epoch);
    while (loader.next(batch)) {
      ++steps;
      for (const auto& [key, leaf] : batch) ASSERT_EQ(leaf.raw(), buffers[key]) << key << " step " << steps;
    }
  }
  EXPECT_EQ(steps, 3 * 12);
}

TEST(Loader, LastBatchIsPaddedWithoutDropLast) {
  const ArrayDataset data = numbered(10);
  Loader loader(data, {.global_batch = 4, .shuffle = false, .drop_last = false});
  EXPECT_EQ(loader.steps_per_epoch(), 3);
  Tree batch;
  for (int s = 0; s < 3; ++s) ASSERT_TRUE(loader.next(batch));
  EXPECT_EQ(batch.at("count").item<float>(), 2.0f);
  EXPECT_THAT(std::vector<float>(batch.at("mask").data<float>().begin(), batch.at("mask").data<float>().end()),
              ::testing::ElementsAre(1, 1, 0, 0));
  EXPECT_THAT(std::vector<std::int32_t>(batch.at("labels").data<std::int32_t>().begin(),
                                        batch.at("labels").data<std::int32_t>().end()),
              ::testing::ElementsAre(8, 9, 0, 0));
  EXPECT_FALSE(loader.next(batch));
  Loader dropping(data, {.global_batch = 4, .shuffle = false});
  EXPECT_EQ(dropping.steps_per_epoch(), 2);
}

TEST(Loader, RejectsBadOptionsAndDataSets) {
  const ArrayDataset data = numbered(10);
  EXPECT_THAT(error_of([&] { Loader(data, {.global_batch = 0}); }),
              HasSubstr("Loader: global_batch 0 is out of range; expected 1 or more"));
  EXPECT_THAT(error_of([&] { Loader(data, {.global_batch = 4, .part_count = 0}); }),
              HasSubstr("Loader: part_count 0 is out of range"));
  EXPECT_THAT(error_of([&] { Loader(data, {.global_batch = 4, .part_index = 2, .part_count = 2}); }),
              HasSubstr("Loader: part_index 2 is out of range 0..1 (part_count 2)"));
  EXPECT_THAT(error_of([&] { Loader(data, {.global_batch = 10, .part_count = 4}); }),
              HasSubstr("Loader: global_batch 10 is not divisible by part_count 4"));
  ArrayDataset mismatched = numbered(10);
  mismatched.labels = Array::zeros({9}, DType::i32);
  EXPECT_THAT(error_of([&] { Loader(mismatched, {.global_batch = 2}); }),
              HasSubstr("Loader: data set \"numbered\" has 10 images but 9 labels"));
  Loader loader(data, {.global_batch = 2});
  EXPECT_THAT(error_of([&] { loader.start_epoch(-1); }),
              HasSubstr("Loader: start_epoch: epoch -1 is negative"));
}

}  // namespace
}  // namespace datarax::data
