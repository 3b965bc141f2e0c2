#include "datarax/dtype.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "datarax/error.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;

TEST(DType, NamesAndSizes) {
  const std::vector<std::tuple<DType, std::string, std::size_t>> expected = {
      {DType::f32, "f32", 4}, {DType::f64, "f64", 8}, {DType::bf16, "bf16", 2},
      {DType::f16, "f16", 2}, {DType::i32, "i32", 4}, {DType::i64, "i64", 8},
      {DType::u8, "u8", 1},   {DType::bool_, "bool", 1}};
  for (const auto& [dtype, name, size] : expected) {
    EXPECT_EQ(to_string(dtype), name);
    EXPECT_EQ(byte_size(dtype), size) << name;
    EXPECT_EQ(parse_dtype(name), dtype);
  }
  EXPECT_TRUE(is_floating(DType::bf16));
  EXPECT_TRUE(is_integral(DType::bool_));
  EXPECT_FALSE(is_floating(DType::i64));
}

TEST(DType, ParseRejectsUnknownNamesListingValidOnes) {
  try {
    parse_dtype("float32");
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"float32\""));
    EXPECT_THAT(e.what(), HasSubstr("f32, f64, bf16, f16, i32, i64, u8, bool"));
  }
}

TEST(DType, TypeTraits) {
  static_assert(dtype_v<float> == DType::f32);
  static_assert(dtype_v<bfloat16> == DType::bf16);
  static_assert(dtype_v<bool> == DType::bool_);
  EXPECT_EQ(visit_dtype(DType::i64, [](auto t) { return sizeof(t); }), 8u);
}

// Reference for binary16: value of a bit pattern from the IEEE formula.
double half_value(std::uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0x1f) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(1024 + mant, exp - 25);
}

TEST(Float16, EveryBitPatternDecodesToTheIeeeValueAndRoundTrips) {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const double expected = half_value(h);
    const float f = float16::to_float(h);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(f)) << b;
      EXPECT_TRUE(std::isnan(float(float16(f)))) << b;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), expected) << "bits " << b;
    ASSERT_EQ(float16(f).bits, h) << "bits " << b;
  }
}

TEST(Float16, RoundsToNearestEven) {
  // Between consecutive halves a < b, the midpoint rounds to the one with an even mantissa, and
  // points a quarter of the way go to the nearer one.
  for (std::uint16_t h = 0; h < 0x7bff; h += 37) {
    const double a = half_value(h), b = half_value(static_cast<std::uint16_t>(h + 1));
    const auto mid = static_cast<float>((a + b) / 2);
    const std::uint16_t even = (h & 1) ? static_cast<std::uint16_t>(h + 1) : h;
    EXPECT_EQ(float16(mid).bits, even) << h;
    EXPECT_EQ(float16(static_cast<float>(a + (b - a) / 4)).bits, h) << h;
    EXPECT_EQ(float16(static_cast<float>(b - (b - a) / 4)).bits, h + 1) << h;
  }
  EXPECT_EQ(float16(65504.0f).bits, 0x7bff);
  EXPECT_EQ(float16(65520.0f).bits, 0x7c00);  // halfway to 2^16 rounds to infinity
  EXPECT_EQ(float16(-1e9f).bits, 0xfc00);
  EXPECT_EQ(float16(std::ldexp(1.0f, -25)).bits, 0x0000);  // half of the smallest subnormal: even
  EXPECT_EQ(float16(std::ldexp(1.5f, -25)).bits, 0x0001);
}

TEST(BFloat16, TruncatesWithRoundToNearestEven) {
  for (std::uint32_t b = 0; b < 0x10000; b += 7) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = std::bit_cast<float>(std::uint32_t{h} << 16);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(float(bfloat16(f))));
      continue;
    }
    ASSERT_EQ(bfloat16(f).bits, h);
    if ((h & 0x7f80) == 0x7f80) continue;  // inf: no next value
    // Exactly halfway to the next bf16: ties to even.
    const float mid = std::bit_cast<float>((std::uint32_t{h} << 16) | 0x8000u);
    EXPECT_EQ(bfloat16(mid).bits, (h & 1) ? h + 1 : h) << b;
  }
  EXPECT_EQ(float(bfloat16(1.0f)), 1.0f);
  EXPECT_EQ(float(bfloat16(3.140625f)), 3.140625f);
}

}  // namespace
}  // namespace datarax
