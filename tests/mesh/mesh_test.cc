#include "datarax/mesh.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/error_of.h"

#include <set>

#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;

using test::error_of;

// Every ordered factorization of n into `dims` factors >= 1.
void factorizations(int n, int dims, std::vector<int>& prefix, std::vector<std::vector<int>>& out) {
  if (dims == 1) {
    prefix.push_back(n);
    out.push_back(prefix);
    prefix.pop_back();
    return;
  }
  for (int f = 1; f <= n; ++f)
    if (n % f == 0) {
      prefix.push_back(f);
      factorizations(n / f, dims - 1, prefix, out);
      prefix.pop_back();
    }
}

std::vector<MeshAxis> named(const std::vector<int>& sizes) {
  static const char* names[] = {"x", "y", "z"};
  std::vector<MeshAxis> axes;
  for (std::size_t i = 0; i < sizes.size(); ++i) axes.emplace_back(names[i], sizes[i]);
  return axes;
}

// Naive reference: coordinates of flat position p in a row-major grid of `shape`.
std::vector<int> naive_coords(int p, const std::vector<int>& shape) {
  std::vector<int> c(shape.size());
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    c[static_cast<std::size_t>(i)] = p % shape[static_cast<std::size_t>(i)];
    p /= shape[static_cast<std::size_t>(i)];
  }
  return c;
}

// Sweep: 1..8 devices, every 1-, 2- and 3-D shape. Checks coordinates, device_at, and that the
// groups over every subset of axes match the definition: same group iff coordinates agree on the
// other axes; rank = row-major index over the chosen axes in the order given.
TEST(Mesh, SweepDevicesAndDimensions) {
  for (int n = 1; n <= 8; ++n) {
    const std::vector<Device> devs = test::first_devices(n);
    for (int dims = 1; dims <= 3; ++dims) {
      std::vector<std::vector<int>> shapes;
      std::vector<int> prefix;
      factorizations(n, dims, prefix, shapes);
      for (const auto& shape : shapes) {
        const Mesh mesh(devs, named(shape));
        SCOPED_TRACE(mesh.to_string());
        ASSERT_EQ(mesh.size(), n);
        ASSERT_EQ(mesh.shape(), shape);
        for (int p = 0; p < n; ++p) {
          const Device& d = devs[static_cast<std::size_t>(p)];
          ASSERT_EQ(mesh.coords(d), naive_coords(p, shape));
          ASSERT_EQ(mesh.device_at(naive_coords(p, shape)), d);
        }
        // Every non-empty ordered subset of the axes (orders matter for ranks).
        std::vector<std::vector<std::string>> subsets;
        const std::vector<std::string> names = mesh.axis_names();
        for (int mask = 1; mask < (1 << dims); ++mask) {
          std::vector<std::string> s;
          for (int i = 0; i < dims; ++i)
            if (mask & (1 << i)) s.push_back(names[static_cast<std::size_t>(i)]);
          subsets.push_back(s);
          if (s.size() > 1) subsets.emplace_back(s.rbegin(), s.rend());
        }
        for (const auto& axes : subsets) {
          const auto groups = mesh.groups(axes);
          int expected_size = 1;
          for (const auto& a : axes) expected_size *= mesh.axis_size(a);
          ASSERT_EQ(static_cast<int>(groups.size()), n / expected_size);
          std::set<Device> seen;
          for (const auto& g : groups) {
            ASSERT_EQ(static_cast<int>(g.size()), expected_size);
            for (std::size_t r = 0; r < g.size(); ++r) {
              ASSERT_TRUE(seen.insert(g[r]).second);
              const auto c = mesh.coords(g[r]);
              const auto c0 = mesh.coords(g[0]);
              int rank = 0;
              for (const auto& a : axes) {
                const int pos = mesh.axis_position(a);
                rank = rank * mesh.axis_size(a) + c[static_cast<std::size_t>(pos)];
              }
              ASSERT_EQ(rank, static_cast<int>(r));
              ASSERT_EQ(mesh.rank_in_group(g[r], axes), static_cast<int>(r));
              for (int i = 0; i < dims; ++i) {
                if (std::find(axes.begin(), axes.end(), names[static_cast<std::size_t>(i)]) == axes.end()) {
                  ASSERT_EQ(c[static_cast<std::size_t>(i)], c0[static_cast<std::size_t>(i)]);
                }
              }
              ASSERT_EQ(mesh.group_of(g[r], axes), g);
            }
          }
          ASSERT_EQ(static_cast<int>(seen.size()), n);
        }
        // No axes: every device alone.
        EXPECT_EQ(static_cast<int>(mesh.groups({}).size()), n);
      }
    }
  }
}

TEST(Mesh, Accessors) {
  const Mesh mesh(test::first_devices(8), {{"data", 2}, {"model", 4}});
  EXPECT_EQ(mesh.axis_names(), (std::vector<std::string>{"data", "model"}));
  EXPECT_EQ(mesh.axis_size("model"), 4);
  EXPECT_EQ(mesh.axis_position("model"), 1);
  EXPECT_EQ(mesh.group_size({"data", "model"}), 8);
  EXPECT_TRUE(mesh.has_axis("data"));
  EXPECT_FALSE(mesh.has_axis("batch"));
  EXPECT_EQ(mesh.to_string(), "Mesh(data=2, model=4; cpu:0..7)");
  EXPECT_EQ(mesh.axes(), (std::vector<MeshAxis>{{"data", 2}, {"model", 4}}));
  // Groups over "model" are the rows, over "data" the columns.
  EXPECT_EQ(mesh.groups({"model"})[1][0].id, 4);
  EXPECT_EQ(mesh.groups({"data"})[3][1].id, 7);
}

TEST(Mesh, ToStringWithNonContiguousIds) {
  auto d = test::first_devices(8);
  const Mesh mesh({d[5], d[6], d[0], d[3]}, {{"data", 4}});
  EXPECT_EQ(mesh.to_string(), "Mesh(data=4; cpu:5..6, cpu:0, cpu:3)");
}

TEST(Mesh, ErrorsAreClear) {
  const auto d = test::first_devices(8);
  EXPECT_THAT(error_of([&] { Mesh(d, {}); }), HasSubstr("at least one axis"));
  EXPECT_THAT(error_of([&] { Mesh(d, {{"", 8}}); }), HasSubstr("axis names must not be empty"));
  EXPECT_THAT(error_of([&] { Mesh(d, {{"a", 2}, {"a", 4}}); }),
              HasSubstr("axis name \"a\" is used twice"));
  EXPECT_THAT(error_of([&] { Mesh(d, {{"a", 0}}); }), HasSubstr("axis \"a\" has size 0; sizes must be >= 1"));
  EXPECT_THAT(error_of([&] { Mesh(d, {{"a", -2}}); }), HasSubstr("has size -2"));
  EXPECT_THAT(error_of([&] { Mesh(d, {{"data", 2}, {"model", 3}}); }),
              HasSubstr("axes data=2, model=3 need 6 devices, but 8 were given"));
  EXPECT_THAT(error_of([&] { Mesh({d[0], d[0]}, {{"a", 2}}); }), HasSubstr("device cpu:0 is listed twice"));
  const Mesh mesh(d, {{"data", 2}, {"model", 4}});
  EXPECT_THAT(error_of([&] { mesh.axis_size("batch"); }),
              HasSubstr("unknown axis \"batch\"; the mesh has axes (data, model)"));
  EXPECT_THAT(error_of([&] { mesh.groups({"data", "data"}); }), HasSubstr("named twice"));
  EXPECT_THAT(error_of([&] { mesh.device_at({2, 0}); }),
              HasSubstr("coordinate 2 on axis \"data\" is out of range 0..1"));
  EXPECT_THAT(error_of([&] { Mesh({d[0]}, {{"a", 1}}).coords(d[1]); }), HasSubstr("cpu:1 is not in"));
}

}  // namespace
}  // namespace datarax
