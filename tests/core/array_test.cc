#include "datarax/array.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/error_of.h"

#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>

#include "core/buffer_pool.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;

using test::error_of;

TEST(Array, DefaultIsEmptyF32) {
  Array a;
  EXPECT_EQ(a.dtype(), DType::f32);
  EXPECT_EQ(a.shape(), Shape{0});
  EXPECT_EQ(a.numel(), 0);
  EXPECT_TRUE(a.data<float>().empty());
}

TEST(Array, ZerosFullAndMetadata) {
  const Device dev{DeviceKind::cpu, 3, 0, 3};
  Array z = Array::zeros({2, 3}, DType::i64, dev);
  EXPECT_EQ(z.dtype(), DType::i64);
  EXPECT_EQ(z.rank(), 2);
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.nbytes(), 48u);
  EXPECT_EQ(z.device(), dev);
  for (auto v : z.data<std::int64_t>()) EXPECT_EQ(v, 0);

  Array f = Array::full({4}, 2.5, DType::bf16);
  for (auto v : f.data<bfloat16>()) EXPECT_EQ(float(v), 2.5f);
  Array b = Array::full({3}, 1, DType::bool_);
  for (bool v : b.data<bool>()) EXPECT_TRUE(v);
}

TEST(Array, FullRejectsValuesOutsideAnIntegerDtype) {
  EXPECT_THAT(error_of([] { Array::full({1}, 300, DType::u8); }),
              HasSubstr("value 300 is not representable as u8 (whole numbers from 0 to 255)"));
  EXPECT_THAT(error_of([] { Array::full({1}, 1.5, DType::i32); }),
              HasSubstr("value 1.5 is not representable as i32"));
}

TEST(Array, FromValuesTakesTheVectorAndChecksTheCount) {
  Array a = Array::from_values<float>({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(a.at<float>({1, 0}), 3.0f);
  a.at<float>({1, 0}) = 7;
  EXPECT_EQ(a.data<float>()[2], 7.0f);
  EXPECT_THAT(error_of([] { Array::from_values<float>({2, 3}, {1, 2, 3, 4, 5}); }),
              HasSubstr("Array::from_values: shape [2, 3] needs 6 values, got 5"));
  Array v = Array::from_vector<std::int32_t>({5, 6, 7});
  EXPECT_EQ(v.shape(), Shape{3});
  Array bools = Array::from_vector<bool>({true, false, true});
  EXPECT_EQ(bools.dtype(), DType::bool_);
  EXPECT_FALSE(bools.data<bool>()[1]);
}

TEST(Array, ScalarIsZeroDimensional) {
  Array s = Array::scalar<double>(4.25);
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item<double>(), 4.25);
  EXPECT_EQ(s.shape().to_string(), "[]");
  EXPECT_THAT(error_of([] { Array::zeros({2}).item<float>(); }),
              HasSubstr("Array::item: the array has 2 elements"));
}

TEST(Array, TypedAccessNamesBothDtypes) {
  Array a = Array::zeros({2}, DType::i32);
  EXPECT_THAT(error_of([&] { a.data<float>(); }),
              HasSubstr("Array::data: requested f32 but the array holds i32"));
  EXPECT_THROW(a.data<float>(), DTypeError);
}

TEST(Array, AtChecksBounds) {
  Array a = Array::zeros({2, 3});
  EXPECT_THAT(error_of([&] { a.at<float>({1, 3}); }),
              HasSubstr("index 3 on axis 1 is out of range 0..2"));
  EXPECT_THAT(error_of([&] { a.at<float>({1}); }), HasSubstr("1 indices given for an array of rank 2"));
}

TEST(Array, SliceIsAZeroCopyViewOfWholeRows) {
  std::vector<float> values(24);
  std::iota(values.begin(), values.end(), 0.0f);
  Array a = Array::from_values<float>({6, 4}, values);
  Array s = a.slice(2, 5);
  EXPECT_EQ(s.shape(), (Shape{3, 4}));
  EXPECT_TRUE(s.shares_buffer_with(a));
  EXPECT_EQ(s.raw(), static_cast<const float*>(a.raw()) + 8);
  EXPECT_EQ(s.at<float>({0, 0}), 8.0f);
  s.at<float>({0, 0}) = -1;  // writes show through: it is a view
  EXPECT_EQ(a.at<float>({2, 0}), -1.0f);
  EXPECT_EQ(a.slice(6, 6).numel(), 0);
  EXPECT_THAT(error_of([&] { a.slice(4, 7); }),
              HasSubstr("range [4, 7) is out of bounds for a leading axis of size 6"));
  EXPECT_THAT(error_of([] { Array::scalar(1.0f).slice(0, 1); }), HasSubstr("0-d array has no leading axis"));
}

TEST(Array, SliceOfSliceOffsetsAccumulate) {
  std::vector<std::int32_t> values(10);
  std::iota(values.begin(), values.end(), 0);
  Array a = Array::from_vector(values);
  Array s = a.slice(2, 9).slice(3, 5);
  EXPECT_EQ(s.data<std::int32_t>()[0], 5);
  EXPECT_EQ(s.data<std::int32_t>()[1], 6);
}

TEST(Array, CopyIsIndependent) {
  Array a = Array::full({3}, 1.0);
  Array c = a.copy();
  EXPECT_FALSE(c.shares_buffer_with(a));
  EXPECT_TRUE(bitwise_equal(a, c));
  c.data<float>()[0] = 5;
  EXPECT_EQ(a.data<float>()[0], 1.0f);
  Array handle = a;  // copying the handle shares
  EXPECT_TRUE(handle.shares_buffer_with(a));
}

TEST(Array, ReshapeWithDeviceAndCopyTo) {
  Array a = Array::zeros({2, 6});
  EXPECT_EQ(a.reshape({3, 4}).shape(), (Shape{3, 4}));
  EXPECT_TRUE(a.reshape({12}).shares_buffer_with(a));
  EXPECT_THAT(error_of([&] { a.reshape({5}); }), HasSubstr("cannot view [2, 6] (12 elements) as [5]"));
  const Device d5{DeviceKind::cpu, 5, 0, 5};
  EXPECT_EQ(a.with_device(d5).device(), d5);
  EXPECT_TRUE(a.with_device(d5).shares_buffer_with(a));
  Array moved = a.copy_to(d5);
  EXPECT_EQ(moved.device(), d5);
  EXPECT_FALSE(moved.shares_buffer_with(a));
  EXPECT_THROW(a.with_device(Device{DeviceKind::cuda, 0, 0, 0}), InvalidArgumentError);
}

TEST(Array, AstypeConverts) {
  Array a = Array::from_vector<std::int32_t>({-2, 0, 3});
  Array f = a.astype(DType::f64);
  EXPECT_EQ(f.data<double>()[0], -2.0);
  Array b = a.astype(DType::bool_);
  EXPECT_TRUE(b.data<bool>()[0]);
  EXPECT_FALSE(b.data<bool>()[1]);
  Array h = Array::from_vector<float>({1.5f, -0.25f}).astype(DType::f16);
  EXPECT_EQ(float(h.data<float16>()[1]), -0.25f);
  EXPECT_EQ(h.astype(DType::i64).data<std::int64_t>()[0], 1);  // truncation toward zero
}

TEST(Array, CopyFromRequiresSameDtypeAndShape) {
  Array dst = Array::zeros({2});
  dst.copy_from(Array::from_vector<float>({3, 4}));
  EXPECT_EQ(dst.data<float>()[1], 4.0f);
  EXPECT_THAT(error_of([&] { dst.copy_from(Array::zeros({3})); }),
              HasSubstr("source is f32[3], destination is f32[2]"));
}

TEST(Array, ToStringShowsDtypeShapeDeviceAndSmallValues) {
  EXPECT_EQ(Array::from_vector<std::int32_t>({1, 2}).to_string(), "i32[2] on cpu:0 {1, 2}");
  EXPECT_EQ(Array::zeros({100}).to_string(), "f32[100] on cpu:0");
}

TEST(Array, BitwiseEqualComparesDtypeShapeAndBytes) {
  EXPECT_TRUE(bitwise_equal(Array::zeros({2}), Array::zeros({2})));
  EXPECT_FALSE(bitwise_equal(Array::zeros({2}), Array::zeros({2}, DType::i32)));
  EXPECT_FALSE(bitwise_equal(Array::zeros({2}), Array::zeros({1, 2})));
  EXPECT_FALSE(bitwise_equal(Array::zeros({2}), Array::full({2}, 1)));
}

TEST(BufferPool, LargeBuffersAreReusedNotReallocated) {
  constexpr std::int64_t kElems = 4 << 20;  // 16 MiB of f32
  const void* first = nullptr;
  {
    Array a = Array::empty({kElems});
    first = a.raw();
  }
  const auto before = detail::buffer_cache_stats();
  Array b = Array::empty({kElems});
  const auto after = detail::buffer_cache_stats();
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.misses, before.misses);
  EXPECT_EQ(b.raw(), first);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.raw()) % detail::kBufferAlignment, 0u);
}

// The VmFlags of the mapping that holds `p`, from /proc/self/smaps ("" if none holds it).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 && line.find(':') > line.find(' '))
      inside = addr >= begin && addr < end;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      return line;
  }
  return {};
}

TEST(BufferPool, LargeBuffersAreHugePageAlignedAndAdvised) {
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  Array big = Array::empty({(3 << 20) / 4});  // 3 MiB: one whole huge page and a tail
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(big.raw()) % kHuge, 0u);
  Array small = Array::empty({(1 << 20) / 4});  // below a huge page: the ordinary allocator
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(small.raw()) % detail::kBufferAlignment, 0u);
  const std::string flags = vm_flags_of(big.raw());
  ASSERT_FALSE(flags.empty()) << "no mapping in /proc/self/smaps holds the buffer";
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  if (!thp) GTEST_SKIP() << "this kernel has no transparent huge pages to advise";
  // "hg": the mapping was marked MADV_HUGEPAGE (whether the kernel found huge pages is its affair).
  EXPECT_THAT(flags + " ", HasSubstr(" hg ")) << flags;
}

TEST(Shape, Basics) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s.row_numel(), 12);
  EXPECT_EQ(s.to_string(), "[2, 3, 4]");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_THAT(error_of([] { Shape{2, -1}; }), HasSubstr("dimension 1 has size -1; sizes must be >= 0"));
  EXPECT_THAT(error_of([&] { s.dim(3); }), HasSubstr("axis 3 is out of range for shape [2, 3, 4]"));
}

}  // namespace
}  // namespace datarax
