// PartitionSpec: the construction forms of the header's examples, the replicated default past the
// last entry, and to_string. Pure value semantics: no mesh or devices involved.
#include "datarax/partition_spec.h"

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace datarax {
namespace {

using Axes = std::vector<std::string>;

TEST(PartitionSpecTest, ConstructionForms) {
  // One axis: dim 0 split over "data".
  const PartitionSpec one{"data"};
  EXPECT_EQ(one.size(), 1);
  EXPECT_EQ(one.axes_of(0), Axes({"data"}));
  EXPECT_FALSE(one.entries()[0].replicated());

  // None first: dim 0 replicated, dim 1 split over "model".
  const PartitionSpec second{std::nullopt, "model"};
  EXPECT_EQ(second.size(), 2);
  EXPECT_TRUE(second.axes_of(0).empty());
  EXPECT_TRUE(second.entries()[0].replicated());
  EXPECT_EQ(second.axes_of(1), Axes({"model"}));

  // Double braces: ONE entry naming two axes (dim 0 split over data x model), not two entries.
  const PartitionSpec tuple{{"data", "model"}};
  EXPECT_EQ(tuple.size(), 1);
  EXPECT_EQ(tuple.axes_of(0), Axes({"data", "model"}));
  const PartitionSpec reversed{{"model", "data"}};
  EXPECT_EQ(reversed.axes_of(0), Axes({"model", "data"}));
  EXPECT_NE(tuple, reversed);  // the order of the axes is the block order: it matters

  // Empty: everything replicated.
  const PartitionSpec none{};
  EXPECT_EQ(none.size(), 0);
  EXPECT_TRUE(none.entries().empty());
  EXPECT_TRUE(none.mesh_axes().empty());
  EXPECT_EQ(none, PartitionSpec());

  // The other spellings of an entry agree with the literal forms.
  EXPECT_EQ(PartitionSpec{std::string("data")}, one);
  EXPECT_EQ(PartitionSpec({PartitionSpec::Entry(std::vector<std::string>{"data", "model"})}), tuple);
  EXPECT_EQ(PartitionSpec(std::vector<PartitionSpec::Entry>{std::nullopt, "model"}), second);
  EXPECT_TRUE(PartitionSpec::Entry(std::vector<std::string>{}).replicated());
}

TEST(PartitionSpecTest, AxesOfPastTheEndIsReplicated) {
  const PartitionSpec spec{"data", std::nullopt, {"model", "pipe"}};
  ASSERT_EQ(spec.size(), 3);
  EXPECT_EQ(spec.axes_of(0), Axes({"data"}));
  EXPECT_TRUE(spec.axes_of(1).empty());
  EXPECT_EQ(spec.axes_of(2), Axes({"model", "pipe"}));
  for (int dim = 3; dim < 10; ++dim) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    EXPECT_TRUE(spec.axes_of(dim).empty());
  }
  EXPECT_TRUE(spec.axes_of(-1).empty());
  EXPECT_TRUE(PartitionSpec{}.axes_of(0).empty());

  // Every named axis, in order of appearance.
  EXPECT_EQ(spec.mesh_axes(), Axes({"data", "model", "pipe"}));
}

TEST(PartitionSpecTest, ToString) {
  struct Case {
    PartitionSpec spec;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {PartitionSpec{}, "PartitionSpec()"},
      {PartitionSpec{"data"}, "PartitionSpec(data)"},
      {PartitionSpec{std::nullopt}, "PartitionSpec(None)"},
      {PartitionSpec{std::nullopt, "model"}, "PartitionSpec(None, model)"},
      {PartitionSpec{{"data", "model"}}, "PartitionSpec((data, model))"},
      {PartitionSpec{std::nullopt, "model", {"data", "pipe"}},
       "PartitionSpec(None, model, (data, pipe))"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    EXPECT_EQ(c.spec.to_string(), c.expected);
    std::ostringstream os;
    os << c.spec;
    EXPECT_EQ(os.str(), c.expected);
  }
}

}  // namespace
}  // namespace datarax
