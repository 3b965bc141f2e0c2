// embedding: a gather checked against plain indexing, the table's gradient (rows used twice
// included), and ids refused at any forward, naming the id and its position.
#include "datarax/nn/ops/embedding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "datarax/nn/value_and_grad.h"
#include "nn/ops/op_check.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::check_op;
using test::ints;
using test::random;
using test::values;

TEST(Embedding, ForwardPicksRows) {
  const std::int64_t V = 5, C = 3;
  const Array table = random({V, C}, 1);
  const std::vector<std::int32_t> ids{4, 0, 4, 2, 1, 3};
  for (DType dt : {DType::f64, DType::f32}) {
    Graph g;
    Var y = embedding(g.input("table", dt == DType::f64 ? table : table.astype(dt)), g.input("ids", ints({2, 3}, ids)));
    EXPECT_EQ(y.shape(), (Shape{2, 3, C}));
    const auto got = values(y.value()), t = values(table);
    for (std::size_t p = 0; p < ids.size(); ++p)
      for (std::int64_t c = 0; c < C; ++c)
        EXPECT_NEAR(got[p * C + c], t[ids[p] * C + c], dt == DType::f64 ? 0 : 1e-7) << p << " " << c;
  }
  Graph g;  // one id, rank-0 ids
  Var y = embedding(g.input("table", table), g.input("ids", ints({}, {2})));
  EXPECT_EQ(y.shape(), (Shape{C}));
}

TEST(Embedding, GradientsMatchCentralDifferencesWithRepeatedIds) {
  // Ids 1 and 3 appear twice: their rows get both contributions; row 0 none.
  const Tree batch{{"ids", ints({2, 4}, {1, 3, 2, 1, 3, 4, 1, 2})}};
  const auto r = check_op([](const VarTree& p, const VarTree& b) { return embedding(p["table"], b["ids"]); },
                          {{"table", random({5, 3}, 2)}}, batch);
  EXPECT_TRUE(r.passed);
  // And the table's gradient by hand: Σ over positions with that id of the loss weights.
  ValueAndGrad vg([](const VarTree& p, const VarTree& b) { return sum(embedding(p["table"], b["ids"])); });
  const auto grad = values(vg({{"table", random({5, 3}, 2)}}, batch).grads.at("table"));
  const std::vector<double> count{0, 3, 2, 2, 1};
  for (int v = 0; v < 5; ++v)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(grad[v * 3 + c], count[v]) << v;
}

TEST(Embedding, BadIdsAreRefusedAtEveryForwardNamingIdAndPosition) {
  Array ids = ints({2, 3}, {0, 1, 2, 3, 4, 0});
  ValueAndGrad vg([](const VarTree& p, const VarTree& b) { return sum(embedding(p["table"], b["ids"])); });
  const Tree params{{"table", random({5, 2}, 3)}};
  vg(params, {{"ids", ids}});
  ids.data<std::int32_t>()[4] = 5;  // a replay with new data
  ids.data<std::int32_t>()[5] = -1;
  EXPECT_THAT(error_of([&] { vg(params, {{"ids", ids}}); }),
              HasSubstr("embedding: id 5 at position [1, 1] (of ids [2, 3]) is out of range; valid: 0..4"));
  ids.data<std::int32_t>()[4] = 0;
  EXPECT_THAT(error_of([&] { vg(params, {{"ids", ids}}); }), HasSubstr("embedding: id -1 at position [1, 2]"));
  Graph g;
  Var t = g.input("t", random({5, 2}, 3));
  EXPECT_THAT(error_of([&] { embedding(t, g.input("i", ints({1}, {7}))); }), HasSubstr("embedding: id 7 at position [0]"));
  EXPECT_THAT(error_of([&] { embedding(t, g.input("f", random({2}, 1))); }),
              HasSubstr("embedding: ids have dtype f64; valid: i32"));
  EXPECT_THAT(error_of([&] { embedding(g.input("t1", random({5}, 3)), g.input("i1", ints({1}, {0}))); }),
              HasSubstr("embedding: the table has shape [5]; it needs [V, C]"));
}

}  // namespace
}  // namespace datarax::nn
