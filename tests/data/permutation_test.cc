#include "datarax/data/permutation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <numeric>

#include "support/error_of.h"

namespace datarax::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using test::error_of;

// Expected permutations from an independent implementation of the algorithm in permutation.h
// (Python, arbitrary-precision integers masked to 64 bits):
//   def perm(n, seed, epoch):
//       g = SM(first((first(seed) + epoch) % 2**64)); p = list(range(n))
//       for i in range(n - 1, 0, -1): j = g.uniform(i + 1); p[i], p[j] = p[j], p[i]
//       return p
TEST(EpochPermutation, MatchesAnIndependentImplementation) {
  EXPECT_THAT(epoch_permutation(10, 42, 0), ElementsAre(6, 1, 8, 5, 2, 7, 4, 3, 9, 0));
  EXPECT_THAT(epoch_permutation(10, 42, 1), ElementsAre(0, 4, 8, 3, 5, 9, 7, 2, 6, 1));
  EXPECT_THAT(epoch_permutation(10, 0, 0), ElementsAre(1, 7, 6, 2, 0, 9, 8, 4, 5, 3));
  EXPECT_THAT(epoch_permutation(16, ~0ull, 7),
              ElementsAre(1, 2, 14, 8, 7, 15, 12, 3, 6, 4, 13, 10, 11, 0, 9, 5));
}

TEST(EpochPermutation, IsAPermutationForEverySize) {
  for (std::int64_t n : {0, 1, 2, 3, 7, 100, 1001, 60000}) {
    std::vector<std::int64_t> p = epoch_permutation(n, 123, 4);
    ASSERT_EQ(static_cast<std::int64_t>(p.size()), n);
    std::sort(p.begin(), p.end());
    std::vector<std::int64_t> identity(static_cast<std::size_t>(n));
    std::iota(identity.begin(), identity.end(), 0);
    EXPECT_EQ(p, identity) << "n=" << n;
  }
}

TEST(EpochPermutation, DependsOnlyOnSeedAndEpoch) {
  EXPECT_EQ(epoch_permutation(1000, 5, 3), epoch_permutation(1000, 5, 3));
  EXPECT_NE(epoch_permutation(1000, 5, 3), epoch_permutation(1000, 5, 4));
  EXPECT_NE(epoch_permutation(1000, 5, 3), epoch_permutation(1000, 6, 3));
  // (seed, epoch) is not symmetric: seed 0 epoch 1 differs from seed 1 epoch 0.
  EXPECT_NE(epoch_permutation(1000, 0, 1), epoch_permutation(1000, 1, 0));
  std::vector<std::int64_t> filled(1000);
  fill_epoch_permutation(filled, 5, 3);
  EXPECT_EQ(filled, epoch_permutation(1000, 5, 3));
}

// Every element lands in every position about equally often: over 8000 epochs of n = 4, each of
// the 16 (element, position) counts is 2000 in expectation, standard deviation ~39.
TEST(EpochPermutation, PositionsAreUniform) {
  std::array<std::array<int, 4>, 4> count{};
  for (std::int64_t epoch = 0; epoch < 8000; ++epoch) {
    const auto p = epoch_permutation(4, 99, epoch);
    for (std::size_t pos = 0; pos < 4; ++pos) ++count[static_cast<std::size_t>(p[pos])][pos];
  }
  for (const auto& row : count)
    for (int c : row) EXPECT_NEAR(c, 2000, 200);
}

TEST(EpochPermutation, RejectsNegativeArguments) {
  EXPECT_THAT(error_of([] { epoch_permutation(3, 0, -1); }),
              HasSubstr("epoch_permutation: epoch -1 is negative; expected 0 or more"));
  EXPECT_THAT(error_of([] { epoch_permutation(-2, 0, 0); }),
              HasSubstr("epoch_permutation: n -2 is negative"));
}

}  // namespace
}  // namespace datarax::data
