// The batches a device evaluates each epoch: its data position's rows of the test set, made once
// at set-up in the step's shapes, so that evaluation replays the training step's recording.
#pragma once

#include <cstdint>
#include <vector>

#include "datarax/data/dataset.h"
#include "datarax/tree.h"

namespace datarax::train::detail {

// The test set's rows of data position `p` of `n`, in batches of `rows` (the last padded: mask
// 0), "count" 1, every position the same number of batches.
std::vector<Tree> eval_batches_of(const data::Dataset& test, std::int64_t p, std::int64_t n, std::int64_t rows);

}  // namespace datarax::train::detail
