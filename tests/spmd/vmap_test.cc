// vmap: a per-example function mapped over the leading axis, Array and Tree forms; results
// stacked and checked against formulas; examples that disagree and 0-d inputs are errors naming
// what is wrong.
#include "datarax/vmap.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "datarax/pmap.h"
#include "datarax/spmd.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;

float f(std::int64_t a, std::int64_t b) { return static_cast<float>((a * 5 + b * 3) % 7) - 3.0f; }

Array matrix(std::int64_t rows, std::int64_t cols) {
  std::vector<float> v;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) v.push_back(f(r, c));
  return Array::from_values<float>({rows, cols}, std::move(v));
}

TEST(Vmap, ArrayFormMapsEachExampleAndStacks) {
  // One example is a row [4]; the function returns [sum, max] of it.
  std::vector<Shape> shapes_seen;
  const auto summarize = vmap([&](const Array& x) {
    shapes_seen.push_back(x.shape());
    const auto d = x.data<float>();
    float sum = 0;
    for (float v : d) sum += v;
    return Array::from_vector<float>({sum, *std::max_element(d.begin(), d.end())});
  });
  const Array out = summarize(matrix(5, 4));
  std::vector<float> want;
  for (std::int64_t r = 0; r < 5; ++r) {
    float sum = 0, max = -1e9f;
    for (std::int64_t c = 0; c < 4; ++c) {
      sum += f(r, c);
      max = std::max(max, f(r, c));
    }
    want.insert(want.end(), {sum, max});
  }
  EXPECT_TRUE(bitwise_equal(out, Array::from_values<float>({5, 2}, want)));
  EXPECT_EQ(shapes_seen, std::vector<Shape>(5, Shape{4}));

  // The identity gives back the batch, in a buffer of its own.
  const Array batch = matrix(3, 2);
  const Array same = vmap([](const Array& x) { return x; })(batch);
  EXPECT_TRUE(bitwise_equal(same, batch));
  EXPECT_FALSE(same.shares_buffer_with(batch));

  // Examples of a 1-D batch are 0-d, and 0-d results stack into a 1-D array.
  const Array doubled = vmap([](const Array& x) { return Array::scalar<std::int32_t>(2 * x.item<std::int32_t>()); })(
      Array::from_vector<std::int32_t>({1, 2, 3}));
  EXPECT_TRUE(bitwise_equal(doubled, Array::from_vector<std::int32_t>({2, 4, 6})));
}

TEST(Vmap, TreeFormMapsEveryLeafTogetherAndStacksEveryResult) {
  const Tree batch{{"x", matrix(4, 3)}, {"y", Array::from_vector<std::int32_t>({10, 20, 30, 40})}};
  const auto fn = vmap([](const Tree& ex) {
    const Array& x = ex.at("x");  // [3]
    const std::int32_t y = ex.at("y").item<std::int32_t>();
    Array scaled = Array::empty({3});
    for (std::size_t c = 0; c < 3; ++c) scaled.data<float>()[c] = x.data<float>()[c] * static_cast<float>(y);
    return Tree{{"out/scaled", scaled}, {"out/y", Array::scalar<std::int32_t>(y + 1)}};
  });
  const Tree out = fn(batch);
  std::vector<float> scaled;
  for (std::int64_t r = 0; r < 4; ++r)
    for (std::int64_t c = 0; c < 3; ++c) scaled.push_back(f(r, c) * static_cast<float>(10 * (r + 1)));
  const Tree want{{"out/scaled", Array::from_values<float>({4, 3}, scaled)},
                  {"out/y", Array::from_vector<std::int32_t>({11, 21, 31, 41})}};
  EXPECT_TRUE(bitwise_equal(out, want));
}

TEST(Vmap, ResultsThatDifferAcrossExamplesNameTheExample) {
  const Array batch = matrix(4, 2);
  EXPECT_THAT(test::error_of([&] {
    vmap([n = 0](const Array&) mutable { return Array::zeros({n++ == 2 ? 3 : 2}); })(batch);
  }), HasSubstr("vmap: the result for example 2 is f32[3], for example 0 it was f32[2]; every example must give the same"));
  EXPECT_THAT(test::error_of([&] {
    vmap([n = 0](const Array&) mutable { return Array::zeros({2}, n++ == 1 ? DType::f64 : DType::f32); })(batch);
  }), HasSubstr("the result for example 1 is f64[2], for example 0 it was f32[2]"));
  // Same element count, other shape.
  EXPECT_THAT(test::error_of([&] {
    vmap([n = 0](const Array&) mutable { return Array::zeros(n++ == 3 ? Shape{2, 3} : Shape{3, 2}); })(batch);
  }), HasSubstr("the result for example 3 is f32[2, 3], for example 0 it was f32[3, 2]"));

  const Tree tree{{"x", batch}};
  EXPECT_THAT(test::error_of([&] {
    vmap([n = 0](const Tree&) mutable { return Tree{{"k", Array::zeros({n++ == 1 ? 1 : 2})}}; })(tree);
  }), HasSubstr("vmap: the result \"k\" for example 1 is f32[1], for example 0 it was f32[2]"));
  EXPECT_THAT(test::error_of([&] {
    vmap([n = 0](const Tree&) mutable { return Tree{{n++ == 2 ? "b" : "a", Array::zeros({2})}}; })(tree);
  }), HasSubstr("vmap: the result for example 2 has keys b, for example 0 it had a"));
}

TEST(Vmap, ZeroDimensionalInputsAndUnequalLeadingSizesAreErrors) {
  const auto id = vmap([](const Array& x) { return x; });
  EXPECT_THAT(test::error_of([&] { id(Array::scalar(1.0f)); }),
              HasSubstr("vmap: the input is 0-d; vmap maps over a leading axis"));
  const auto tree_id = vmap([](const Tree& t) { return t; });
  EXPECT_THAT(test::error_of([&] { tree_id(Tree{{"a", Array::zeros({2})}, {"s", Array::scalar(1.0f)}}); }),
              HasSubstr("vmap: leaf \"s\" is 0-d; vmap maps over a leading axis"));
  EXPECT_THAT(test::error_of([&] { tree_id(Tree{{"a", Array::zeros({2})}, {"b", Array::zeros({3, 1})}}); }),
              HasSubstr("vmap: leaf \"b\" has leading size 3 but \"a\" has 2; all leaves must agree"));
}

TEST(Vmap, InsidePmapItRunsOnTheDevicesOwnThread) {
  test::first_devices(8);
  const auto per_example = vmap([](const Array& x) {
    // Still inside SPMD, on the device pmap gave this call.
    return Array::from_vector<float>({x.item<float>(), static_cast<float>(current_device().id)});
  });
  const Tree got = pmap([&](const Tree& t) { return Tree{{"y", per_example(t.at("x"))}}; }, "batch")(
                       Tree{{"x", matrix(8, 3).reshape({8, 3, 1})}}).gather();
  std::vector<float> want;
  for (std::int64_t d = 0; d < 8; ++d)
    for (std::int64_t e = 0; e < 3; ++e) want.insert(want.end(), {f(d, e), static_cast<float>(d)});
  EXPECT_TRUE(bitwise_equal(got.at("y"), Array::from_values<float>({8, 3, 2}, want)));
}

}  // namespace
}  // namespace datarax
