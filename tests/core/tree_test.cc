#include "datarax/tree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/error_of.h"

namespace datarax {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using test::error_of;

Tree params() {
  return Tree{{"params/dense_1/kernel", Array::full({2, 2}, 1.0)},
              {"params/dense_0/kernel", Array::full({3, 2}, 2.0)},
              {"params/dense_0/bias", Array::full({2}, 3.0)}};
}

TEST(Tree, KeysAreSorted) {
  EXPECT_THAT(params().keys(), ElementsAre("params/dense_0/bias", "params/dense_0/kernel",
                                           "params/dense_1/kernel"));
}

TEST(Tree, AtNamesTheMissingKeyAndTheTreesKeys) {
  Tree t = params();
  EXPECT_EQ(t.at("params/dense_0/bias").numel(), 2);
  const std::string msg = error_of([&] { t.at("params/dense_2/bias"); });
  EXPECT_THAT(msg, HasSubstr("no key \"params/dense_2/bias\""));
  EXPECT_THAT(msg, HasSubstr("params/dense_0/bias, params/dense_0/kernel"));
  EXPECT_THROW(t.at("x"), KeyError);
}

TEST(Tree, RejectsMalformedKeyPaths) {
  Tree t;
  for (const char* bad : {"", "/a", "a/", "a//b"})
    EXPECT_THAT(error_of([&] { t.set(bad, Array()); }), HasSubstr("Tree::set: key path")) << bad;
  t.set("a/b", Array());
  t.set("a/b", Array::zeros({5}));  // replaces
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.at("a/b").numel(), 5);
}

TEST(Tree, MapAppliesToEveryLeaf) {
  Tree doubled = params().map([](const Array& a) {
    Array out = a.copy();
    for (float& v : out.data<float>()) v *= 2;
    return out;
  });
  EXPECT_EQ(doubled.at("params/dense_0/bias").data<float>()[0], 6.0f);
  Tree named = params().map([](const std::string& key, const Array& a) {
    return Array::full({1}, static_cast<double>(key.size() + a.numel()));
  });
  EXPECT_EQ(named.at("params/dense_0/bias").data<float>()[0], 19.0f + 2.0f);
}

TEST(Tree, Map2AndZipPairLeavesByKey) {
  Tree a = params();
  Tree b = params();
  Tree sum = map2(a, b, [](const Array& x, const Array& y) {
    Array out = x.copy();
    for (std::size_t i = 0; i < out.data<float>().size(); ++i) out.data<float>()[i] += y.data<float>()[i];
    return out;
  });
  EXPECT_EQ(sum.at("params/dense_1/kernel").data<float>()[3], 2.0f);
  auto z = zip(a, b);
  ASSERT_EQ(z.size(), 3u);
  EXPECT_EQ(z[0].key, "params/dense_0/bias");
  EXPECT_TRUE(z[0].a.shares_buffer_with(a.at("params/dense_0/bias")));
}

TEST(Tree, Map2NamesAMissingOrExtraKey) {
  Tree a = params();
  Tree b = params();
  b.erase("params/dense_1/kernel");
  EXPECT_THAT(error_of([&] { zip(a, b); }),
              HasSubstr("key \"params/dense_1/kernel\" is in the first tree but missing from the second"));
  b = params();
  b.set("params/extra", Array());
  EXPECT_THAT(error_of([&] { map2(a, b, [](const Array& x, const Array&) { return x; }); }),
              HasSubstr("key \"params/extra\" is in the second tree but missing from the first"));
}

TEST(Tree, SubtreeAndPrefix) {
  Tree t = params();
  Tree d0 = t.subtree("params/dense_0");
  EXPECT_THAT(d0.keys(), ElementsAre("bias", "kernel"));
  EXPECT_TRUE(d0.at("kernel").shares_buffer_with(t.at("params/dense_0/kernel")));
  EXPECT_TRUE(bitwise_equal(d0.with_prefix("params/dense_0"), t.subtree("params").subtree("dense_0").with_prefix("params/dense_0")));
  EXPECT_TRUE(t.subtree("params/dense").empty());  // segment boundaries, not string prefixes
}

TEST(Tree, BitwiseEqual) {
  EXPECT_TRUE(bitwise_equal(params(), params()));
  Tree t = params();
  t.at("params/dense_0/bias").data<float>()[0] = 9;
  EXPECT_FALSE(bitwise_equal(params(), t));
}

}  // namespace
}  // namespace datarax
