// Loader: the batches of a data set for one process of a data-parallel job, epoch by epoch.
//
// Every process builds a Loader over the same data set with the same options except part_index.
// For each step the job agrees on one GLOBAL batch of global_batch examples — consecutive
// positions of the epoch's order (epoch_permutation(N, seed, epoch) when shuffling, the data
// set's order otherwise) — cut into P equal parts (P = part_count), and the loader yields part p:
// rows [p*B/P, (p+1)*B/P) (B = global_batch). The order depends only on (seed, epoch), so no
// process needs to talk to another. In a data-parallel job part p is process p's (P the process
// count); when a "model" axis spans processes, the processes of one model group load the same
// part — the rows of the "data" positions their devices hold (the trainer works this out).
//
// A batch is a Tree with the data set's fields (dataset.h), b = B/P rows each, and two more:
//   <field>   [b, ...]  the examples' leaves (ArrayDataset: "inputs" f32 [b, 784] for MNIST,
//                       "labels" i32 [b])
//   "mask"    f32 [b]   1 for a real example, 0 for padding
//   "count"   f32 []    the number of real examples in the whole GLOBAL batch
// With drop_last (the default) an epoch has floor(N/B) full batches. Without it, it has
// ceil(N/B), and the last is padded to full size with zero rows (every field 0, mask 0): the
// shapes never change, and sum(loss * mask) / count, summed over processes, is the exact mean over
// real examples.
//
// Memory: the loader refers to the data set (which must outlive it). next() writes into the arrays
// already in `batch` when their dtype, shape and device kind (cpu) fit, and allocates only when
// they do not (the first call): a step in steady state allocates nothing. So keep a copy() of a
// batch that must outlive the next call. A Loader is not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "datarax/data/mnist.h"
#include "datarax/tree.h"

namespace datarax::data {

struct LoaderOptions {
  std::int64_t global_batch = 0;  // B: examples per step across all processes; > 0
  std::uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;
  int part_index = 0;  // p in 0..P-1: which part of each global batch this loader yields
  int part_count = 1;  // P; must divide global_batch
};

class Loader {
 public:
  // Checks the options and the data set's fields and starts epoch 0. Errors name Loader, the bad
  // value and the valid range. `dataset` must outlive the loader.
  Loader(const Dataset& dataset, LoaderOptions options);

  // Steps in every epoch: N / B rounded down with drop_last, up without.
  std::int64_t steps_per_epoch() const;
  // Examples per process per step: B / P.
  std::int64_t local_batch() const { return local_batch_; }
  std::int64_t epoch() const { return epoch_; }
  // Steps already taken in this epoch.
  std::int64_t step() const { return step_; }

  // Starts epoch `epoch` (>= 0) from its first step; epochs may come in any order.
  void start_epoch(std::int64_t epoch);
  // Moves within the epoch to step `step` (0..steps_per_epoch()): the next batch is the one that
  // step would take, on any process count — where a resumed run continues.
  void seek(std::int64_t step);

  // Fills `batch` with this process's part of the next global batch and returns true; returns
  // false, leaving `batch` as it was, when the epoch has no more steps.
  bool next(Tree& batch);

 private:
  Array& leaf(Tree& batch, const std::string& key, const Shape& shape, DType dtype);

  const Dataset& dataset_;
  std::vector<Field> fields_;
  LoaderOptions options_;
  std::int64_t size_ = 0;  // N
  std::int64_t local_batch_ = 0;
  std::int64_t epoch_ = 0;
  std::int64_t step_ = 0;
  std::vector<std::int64_t> order_;  // the epoch's permutation; empty without shuffle
  std::vector<Shape> shapes_;        // by field: [b, ...], made once
  std::vector<Array> rows_;          // by field: the batch's leaves, handed to Dataset::read
  std::vector<std::int64_t> indices_;  // the batch's examples
  Shape mask_shape_, scalar_shape_;
};

}  // namespace datarax::data
