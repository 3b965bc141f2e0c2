// The library's one random-bit generator (src/core/splitmix64.h) against SplitMix64's published
// outputs and its definition.
#include "core/splitmix64.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/error_of.h"

namespace datarax::detail {
namespace {

using ::testing::HasSubstr;
using test::error_of;

// The published SplitMix64 outputs from state 0 (Vigna's splitmix64.c reference).
TEST(SplitMix64, MatchesTheReferenceSequence) {
  SplitMix64 g(0);
  EXPECT_EQ(g.next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(g.next(), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(g.next(), 0x06C45D188009454Full);
}

// at(key, n) is the n-th output of the sequential generator started at key.
TEST(SplitMix64, CounterBasedDrawsAreTheSequence) {
  for (std::uint64_t key : {0ull, 7ull, ~0ull}) {
    SplitMix64 g(key);
    for (std::uint64_t n = 0; n < 5; ++n) EXPECT_EQ(SplitMix64::at(key, n), g.next()) << key << " " << n;
  }
  EXPECT_EQ(SplitMix64::at(0, 0), 0xE220A8397B1DCDAFull);
}

TEST(SplitMix64, UniformStaysInRange) {
  SplitMix64 g(7);
  for (std::uint64_t bound : {1ull, 2ull, 3ull, 10ull, 60000ull, (1ull << 63) + 1, ~0ull})
    for (int i = 0; i < 100; ++i) EXPECT_LT(g.uniform(bound), bound);
  EXPECT_THAT(error_of([&] { g.uniform(0); }), HasSubstr("SplitMix64::uniform: bound 0 is out of range"));
}

TEST(SplitMix64, UnitDoubleUsesTheTop53Bits) {
  EXPECT_EQ(unit_double(0), 0.0);
  EXPECT_EQ(unit_double(~0ull), 1.0 - 0x1.0p-53);
  EXPECT_EQ(unit_double(1ull << 63), 0.5);
}

}  // namespace
}  // namespace datarax::detail
