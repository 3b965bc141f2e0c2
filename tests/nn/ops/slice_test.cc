// transpose, slice, concat and split against index arithmetic written here, their gradients,
// and their argument errors.
#include "datarax/nn/ops/slice.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "datarax/nn/ops/transpose.h"
#include "nn/ops/op_check.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::check_op;
using test::random;
using test::values;

// Row-major flat index of idx in dims.
std::int64_t flat(const std::vector<std::int64_t>& idx, const std::vector<std::int64_t>& dims) {
  std::int64_t f = 0;
  for (std::size_t d = 0; d < dims.size(); ++d) f = f * dims[d] + idx[d];
  return f;
}
// Calls fn(idx) for every multi-index of dims, row-major.
template <class Fn>
void for_each_index(const std::vector<std::int64_t>& dims, Fn fn) {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  std::vector<std::int64_t> idx(dims.size());
  for (std::int64_t f = 0; f < n; ++f) {
    std::int64_t rest = f;
    for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
      idx[d] = rest % dims[d];
      rest /= dims[d];
    }
    fn(idx);
  }
}

TEST(Transpose, EveryPermutationOfRank3AndOthersMatchIndexing) {
  struct Case {
    std::vector<std::int64_t> dims;
    std::vector<int> perm;
  };
  std::vector<Case> cases{{{5}, {0}}, {{2, 3}, {1, 0}}, {{1, 4}, {1, 0}}, {{2, 3, 4, 5}, {0, 2, 1, 3}},
                          {{2, 3, 4, 5}, {3, 1, 0, 2}}, {{3, 0, 2}, {2, 0, 1}}};
  std::vector<int> p{0, 1, 2};
  do cases.push_back({{2, 3, 4}, p});
  while (std::next_permutation(p.begin(), p.end()));
  for (const Case& c : cases) {
    const Array x = random(Shape(c.dims), 1);
    const auto xv = values(x);
    Graph g;
    Var y = transpose(g.input("x", x), c.perm);
    std::vector<std::int64_t> odims;
    for (int a : c.perm) odims.push_back(c.dims[a]);
    ASSERT_EQ(y.shape(), Shape(odims));
    const auto yv = values(y.value());
    for_each_index(odims, [&](const std::vector<std::int64_t>& o) {
      std::vector<std::int64_t> i(c.dims.size());
      for (std::size_t k = 0; k < o.size(); ++k) i[c.perm[k]] = o[k];
      EXPECT_EQ(yv[flat(o, odims)], xv[flat(i, c.dims)]);
    });
    Graph g32;  // f32: the same copy
    EXPECT_EQ(values(transpose(g32.input("x", x.astype(DType::f32)), c.perm).value()), values(y.value().astype(DType::f32)));
    if (x.numel() > 0) {
      EXPECT_TRUE(check_op([&](const VarTree& pp, const VarTree&) { return transpose(pp["x"], c.perm); }, {{"x", x}})
                      .passed);
    }
  }
  Graph g;  // f32, rank 0
  EXPECT_EQ(transpose(g.input("s", Array::scalar<float>(2.5f)), {}).value().item<float>(), 2.5f);
}

TEST(Transpose, BadPermutationsAreNamed) {
  Graph g;
  Var x = g.input("x", random({2, 3, 4}, 1));
  EXPECT_THAT(error_of([&] { transpose(x, {0, 1}); }),
              HasSubstr("transpose: permutation [0, 1] has 2 axes; the input [2, 3, 4] has 3"));
  EXPECT_THAT(error_of([&] { transpose(x, {0, 3, 1}); }),
              HasSubstr("transpose: permutation [0, 3, 1] names axis 3; valid: 0..2, each once"));
  EXPECT_THAT(error_of([&] { transpose(x, {1, 1, 0}); }),
              HasSubstr("transpose: permutation [1, 1, 0] names axis 1 twice"));
  EXPECT_THAT(error_of([&] { transpose(x, {-1, 1, 0}); }), HasSubstr("names axis -1"));
}

TEST(Slice, SliceConcatSplitMatchIndexing) {
  const std::vector<std::int64_t> dims{3, 5, 2};
  const Array x = random(Shape(dims), 2);
  const auto xv = values(x);
  for (int axis : {0, 1, 2, -1})
    for (auto [start, stop] : {std::pair<std::int64_t, std::int64_t>{0, 1}, {1, 2}, {0, 2}, {1, 1}}) {
      Graph g;
      Var y = slice(g.input("x", x), axis, start, stop);
      const int a = axis < 0 ? axis + 3 : axis;
      std::vector<std::int64_t> od = dims;
      od[a] = stop - start;
      ASSERT_EQ(y.shape(), Shape(od));
      const auto yv = values(y.value());
      for_each_index(od, [&](std::vector<std::int64_t> o) {
        const auto f = flat(o, od);
        o[a] += start;
        EXPECT_EQ(yv[f], xv[flat(o, dims)]);
      });
    }
  // concat(split(x)) is x, on every axis, with a piece of extent 0 among them.
  for (int axis : {0, 1, 2}) {
    Graph g;
    Var v = g.input("x", x);
    const std::int64_t n = dims[axis];
    auto pieces = split(v, axis, {1, 0, n - 1});
    ASSERT_EQ(pieces.size(), 3u);
    EXPECT_EQ(pieces[1].shape()[axis], 0);
    EXPECT_EQ(values(concat(pieces, axis).value()), xv);
    Var v32 = g.input("x32", x.astype(DType::f32));
    EXPECT_EQ(values(concat(split(v32, axis, {n - 1, 1}), axis).value()), values(x.astype(DType::f32)));
  }
  Graph g;  // concat of different extents: [2, 1] and [2, 3] along 1
  Var a = g.input("a", test::array({2, 1}, {1, 2})), b = g.input("b", test::array({2, 3}, {3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(values(concat({a, b}, -1).value()), (std::vector<double>{1, 3, 4, 5, 2, 6, 7, 8}));
  EXPECT_EQ(values(concat({b, a}, 1).value()), (std::vector<double>{3, 4, 5, 1, 6, 7, 8, 2}));
}

TEST(Slice, GradientsMatchCentralDifferences) {
  const Tree params{{"x", random({3, 5, 2}, 3)}, {"y", random({3, 2, 2}, 4)}};
  EXPECT_TRUE(check_op([](const VarTree& p, const VarTree&) { return slice(p["x"], 1, 1, 4); }, params).passed);
  // x used twice (concat of x with a piece of itself) and y: gradients add.
  EXPECT_TRUE(check_op([](const VarTree& p, const VarTree&) {
                return concat({p["x"], p["y"], slice(p["x"], 1, 0, 2)}, 1);
              }, params).passed);
  // Split pieces used in different ways: one multiplied by another, one dropped.
  EXPECT_TRUE(check_op([](const VarTree& p, const VarTree&) {
                auto s = split(p["x"], 1, {2, 1, 2});
                return concat({s[0] * s[2], s[0]}, 0);
              }, params).passed);
}

TEST(Slice, BadArgumentsAreNamed) {
  Graph g;
  Var x = g.input("x", random({3, 5}, 1)), y = g.input("y", random({2, 4}, 1));
  EXPECT_THAT(error_of([&] { slice(x, 1, 2, 6); }),
              HasSubstr("slice: range 2:6 along axis 1 of [3, 5]; valid: 0 <= start <= stop <= 5"));
  EXPECT_THAT(error_of([&] { slice(x, 0, 2, 1); }), HasSubstr("slice: range 2:1 along axis 0"));
  EXPECT_THAT(error_of([&] { slice(x, 2, 0, 1); }), HasSubstr("slice: axis 2 is out of range for shape [3, 5]"));
  EXPECT_THAT(error_of([&] { concat({x, y}, 1); }),
              HasSubstr("concat: input 1 has shape [2, 4], input 0 [3, 5]; all extents but axis 1's must agree"));
  EXPECT_THAT(error_of([&] { concat(std::span<const Var>{}, 0); }), HasSubstr("concat: no inputs"));
  EXPECT_THAT(error_of([&] { split(x, 1, {2, 2}); }), HasSubstr("split: sizes add up to 4; axis 1 of [3, 5] has 5"));
  EXPECT_THAT(error_of([&] { split(x, 1, {6, -1}); }), HasSubstr("split: size -1 of piece 1; sizes are >= 0"));
}

}  // namespace
}  // namespace datarax::nn
