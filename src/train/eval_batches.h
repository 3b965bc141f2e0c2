// The batches a device evaluates each epoch: its data position's rows of the test set, made once
// at set-up in the step's shapes, so that evaluation replays the training step's recording.
#pragma once

#include <cstdint>
#include <vector>

#include "datarax/data/dataset.h"
#include "datarax/tree.h"

namespace datarax::train::detail {

// The test set's rows of data position `p` of `n`, in batches of `rows` (the last padded: mask
// 0), "count" 1, "first_example" the test-set index of the batch's first row (i64 []), "step"
// `step` itself in every batch (i64 []: the caller sets it to the steps trained before each
// evaluation), every position the same number of batches.
std::vector<Tree> eval_batches_of(const data::Dataset& test, std::int64_t p, std::int64_t n, std::int64_t rows,
                                  const Array& step);

}  // namespace datarax::train::detail
