// ShardedArray layout, swept: for 1-D, 2-D and 3-D meshes and every way of assigning the mesh's
// axes to the dimensions of arrays of rank 0..3 (unused, alone, or in tuples of several in every
// order), every shard is checked element by element against a naive reference of the layout, the
// gathered array against the source bitwise, and a reshard against the same reference.
//
// The reference (the header's contract, written out the slow way): for the device at mesh
// coordinates c and a dimension d split over axes (a1..ak) of sizes (s1..sk), the block index is
// b = ((c[a1] * s2 + c[a2]) * s3 + ...) and the block length L = n_d / (s1 * ... * sk); element
// i_d is held iff i_d / L == b. Replicated dimensions hold everything. Device k of the mesh has the
// row-major coordinates of k over the axis sizes.
#include "datarax/sharded_array.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "datarax/error.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

const std::vector<std::string> kAxisNames = {"data", "model", "pipe"};

// Which mesh axes (positions) split each array dimension, major first.
using DimAxes = std::vector<std::vector<int>>;

// One case of the naive reference: mesh axis sizes, the assignment, and the global shape.
struct Layout {
  std::vector<int> mesh_sizes;
  DimAxes dim_axes;
  std::vector<std::int64_t> shape;

  std::int64_t split_count(int d) const {
    std::int64_t p = 1;
    for (int a : dim_axes[static_cast<std::size_t>(d)]) p *= mesh_sizes[static_cast<std::size_t>(a)];
    return p;
  }
  // Devices holding each element: the mesh size over the sizes of the axes the spec uses.
  std::int64_t holders() const {
    std::int64_t devices = 1;
    for (int s : mesh_sizes) devices *= s;
    for (std::size_t d = 0; d < dim_axes.size(); ++d) devices /= split_count(static_cast<int>(d));
    return devices;
  }
};

std::vector<int> coords_of(const std::vector<int>& sizes, int k) {
  std::vector<int> c(sizes.size());
  for (std::size_t a = sizes.size(); a-- > 0;) {
    c[a] = k % sizes[a];
    k /= sizes[a];
  }
  return c;
}

// Block index b of dimension d for mesh coordinates c (0 for a replicated dimension).
std::int64_t block_index(const Layout& ref, const std::vector<int>& c, int d) {
  std::int64_t b = 0;
  for (int a : ref.dim_axes[static_cast<std::size_t>(d)])
    b = b * ref.mesh_sizes[static_cast<std::size_t>(a)] + c[static_cast<std::size_t>(a)];
  return b;
}

bool holds(const Layout& ref, const std::vector<int>& c, const std::vector<std::int64_t>& i) {
  for (int d = 0; d < static_cast<int>(ref.shape.size()); ++d) {
    if (ref.dim_axes[static_cast<std::size_t>(d)].empty()) continue;
    const std::int64_t block_len = ref.shape[static_cast<std::size_t>(d)] / ref.split_count(d);
    if (i[static_cast<std::size_t>(d)] / block_len != block_index(ref, c, d)) return false;
  }
  return true;
}

// The value of the element at row-major linear index i, per dtype; bitwise distinct enough that a
// misplaced block shows.
template <class T>
T value_at(std::int64_t i) {
  if constexpr (std::is_same_v<T, bool>) return i % 3 == 1;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return static_cast<std::uint8_t>((i * 13 + 1) % 256);
  else if constexpr (std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>)
    return T::from_bits(static_cast<std::uint16_t>((i * 40503 + 7) & 0x3fff));
  else if constexpr (std::is_same_v<T, float>) return static_cast<float>(i) * 0.5f - 3.0f;
  else if constexpr (std::is_same_v<T, double>) return static_cast<double>(i) * 0.25 + 1e9;
  else if constexpr (std::is_same_v<T, std::int64_t>) return i * (std::int64_t{1} << 33) - 5;
  else return static_cast<T>(i * 7 - 100);
}

template <class T>
Array make_array(const std::vector<std::int64_t>& dims) {
  Shape shape(dims);
  std::vector<T> values;
  for (std::int64_t i = 0; i < shape.numel(); ++i) values.push_back(value_at<T>(i));
  return Array::from_values<T>(std::move(shape), std::move(values));
}

// Every shard of `sa` against the reference: device order, index ranges, block shape, and every
// element of the global array held by exactly the devices the reference says, with its value.
template <class T>
::testing::AssertionResult matches_reference(const ShardedArray& sa, const Layout& ref) {
  const Mesh& mesh = sa.sharding().mesh();
  const int rank = static_cast<int>(ref.shape.size());
  if (sa.shape() != Shape(ref.shape) || sa.dtype() != dtype_v<T>)
    return ::testing::AssertionFailure() << "global shape/dtype " << sa.to_string();
  if (static_cast<int>(sa.shards().size()) != mesh.size())
    return ::testing::AssertionFailure() << sa.shards().size() << " shards for " << mesh.size();
  // The sharding's own block arithmetic agrees with the reference.
  if (sa.sharding().replication_factor() != ref.holders())
    return ::testing::AssertionFailure() << "replication_factor " << sa.sharding().replication_factor()
                                         << ", expected " << ref.holders();
  for (int d = 0; d < rank; ++d)
    if (sa.sharding().num_shards(rank)[static_cast<std::size_t>(d)] != ref.split_count(d))
      return ::testing::AssertionFailure() << "num_shards of dimension " << d;
  std::vector<std::vector<int>> coords;
  for (int k = 0; k < mesh.size(); ++k) {
    const Shard& s = sa.shards()[static_cast<std::size_t>(k)];
    coords.push_back(coords_of(ref.mesh_sizes, k));
    if (s.device != mesh.devices()[static_cast<std::size_t>(k)] || s.data.device() != s.device)
      return ::testing::AssertionFailure() << "shard " << k << " is on " << s.device;
    std::vector<IndexRange> want;
    for (int d = 0; d < rank; ++d) {
      const std::int64_t n = ref.shape[static_cast<std::size_t>(d)];
      const std::int64_t len = n / ref.split_count(d);
      const std::int64_t b = block_index(ref, coords.back(), d);
      want.push_back(ref.dim_axes[static_cast<std::size_t>(d)].empty() ? IndexRange{0, n}
                                                                       : IndexRange{b * len, (b + 1) * len});
    }
    if (s.index != want) return ::testing::AssertionFailure() << "shard " << k << ": wrong index";
    std::vector<std::int64_t> block_dims;
    for (const IndexRange& r : want) block_dims.push_back(r.size());
    if (s.data.shape() != Shape(block_dims) || s.data.dtype() != dtype_v<T> ||
        sa.sharding().shard_shape(sa.shape()) != Shape(block_dims))
      return ::testing::AssertionFailure() << "shard " << k << " is " << s.data.to_string();
  }
  const std::int64_t numel = Shape(ref.shape).numel();
  std::vector<std::int64_t> i(static_cast<std::size_t>(rank), 0);
  for (std::int64_t g = 0; g < numel; ++g) {
    std::int64_t count = 0;
    for (int k = 0; k < mesh.size(); ++k) {
      if (!holds(ref, coords[static_cast<std::size_t>(k)], i)) continue;
      ++count;
      const Shard& s = sa.shards()[static_cast<std::size_t>(k)];
      std::int64_t local = 0;
      for (int d = 0; d < rank; ++d)
        local = local * s.index[static_cast<std::size_t>(d)].size() + i[static_cast<std::size_t>(d)] -
                s.index[static_cast<std::size_t>(d)].start;
      const T got = s.data.data<T>()[static_cast<std::size_t>(local)];
      const T want = value_at<T>(g);
      if (std::memcmp(&got, &want, sizeof(T)) != 0)
        return ::testing::AssertionFailure() << "element " << g << " on shard " << k << " differs";
    }
    if (count != ref.holders())
      return ::testing::AssertionFailure()
             << "element " << g << " held by " << count << " devices, expected " << ref.holders();
    for (int d = rank - 1; d >= 0 && ++i[static_cast<std::size_t>(d)] == ref.shape[static_cast<std::size_t>(d)]; --d)
      i[static_cast<std::size_t>(d)] = 0;
  }
  return ::testing::AssertionSuccess();
}

// Buffer sharing: with view_if_possible, a shard is a view of the source exactly when its block is
// a run of whole rows (no dimension after the first is split into more than one block); with copy,
// no shard shares a buffer with the source or with another shard. Empty arrays hold no buffer.
::testing::AssertionResult shares_as_expected(const ShardedArray& sa, const Array& x,
                                              Placement placement, const Layout& ref) {
  if (x.numel() == 0) return ::testing::AssertionSuccess();
  bool leading = true;
  for (int d = 1; d < static_cast<int>(ref.shape.size()); ++d) leading = leading && ref.split_count(d) == 1;
  const bool want_view = placement == Placement::view_if_possible && leading;
  const auto& shards = sa.shards();
  for (std::size_t k = 0; k < shards.size(); ++k) {
    if (shards[k].data.shares_buffer_with(x) != want_view)
      return ::testing::AssertionFailure() << "shard " << k << (want_view ? " copies" : " views")
                                           << " the source";
    if (placement == Placement::copy)
      for (std::size_t l = 0; l < k; ++l)
        if (shards[k].data.shares_buffer_with(shards[l].data))
          return ::testing::AssertionFailure() << "shards " << l << " and " << k << " share a buffer";
  }
  return ::testing::AssertionSuccess();
}

// Every way to give each mesh axis to no dimension or to one dimension of a rank-`rank` array, at
// every position among the axes already there (so tuples come in every order).
void enumerate(int axis, int num_axes, DimAxes& current, std::vector<DimAxes>& out) {
  if (axis == num_axes) {
    out.push_back(current);
    return;
  }
  enumerate(axis + 1, num_axes, current, out);
  for (auto& axes : current) {
    for (std::size_t pos = 0; pos <= axes.size(); ++pos) {
      axes.insert(axes.begin() + static_cast<std::ptrdiff_t>(pos), axis);
      enumerate(axis + 1, num_axes, current, out);
      axes.erase(axes.begin() + static_cast<std::ptrdiff_t>(pos));
    }
  }
}

// The PartitionSpec of an assignment; `trim` drops trailing replicated entries (same meaning).
PartitionSpec spec_of(const DimAxes& dim_axes, bool trim) {
  std::vector<PartitionSpec::Entry> entries;
  for (const auto& axes : dim_axes) {
    std::vector<std::string> names;
    for (int a : axes) names.push_back(kAxisNames[static_cast<std::size_t>(a)]);
    if (names.empty()) entries.emplace_back(std::nullopt);
    else if (names.size() == 1) entries.emplace_back(names[0]);
    else entries.emplace_back(std::move(names));
  }
  while (trim && !entries.empty() && entries.back().replicated()) entries.pop_back();
  return PartitionSpec(std::move(entries));
}

Mesh make_mesh(const std::vector<int>& sizes) {
  std::vector<MeshAxis> axes;
  int n = 1;
  for (std::size_t a = 0; a < sizes.size(); ++a) {
    axes.emplace_back(kAxisNames[a], sizes[a]);
    n *= sizes[a];
  }
  return Mesh(test::first_devices(n), std::move(axes));
}

// Calls fn(std::type_identity<T>{}) for every element type.
template <class Fn>
void for_each_dtype(Fn&& fn) {
  fn(std::type_identity<float>{});
  fn(std::type_identity<double>{});
  fn(std::type_identity<std::int32_t>{});
  fn(std::type_identity<std::int64_t>{});
  fn(std::type_identity<std::uint8_t>{});
  fn(std::type_identity<bool>{});
  fn(std::type_identity<bfloat16>{});
  fn(std::type_identity<float16>{});
}

class ShardedArraySweep : public ::testing::TestWithParam<std::vector<int>> {};

TEST_P(ShardedArraySweep, ShardsMatchReferenceAndRoundTrip) {
  const std::vector<int> sizes = GetParam();
  const Mesh mesh = make_mesh(sizes);
  // Block multipliers per dimension: general, one element per block, and an empty dimension.
  const std::vector<std::vector<std::int64_t>> multipliers = {{2, 1, 3}, {1, 1, 1}, {0, 2, 1}};
  int spec_counter = 0;
  for (int rank = 0; rank <= 3; ++rank) {
    DimAxes empty(static_cast<std::size_t>(rank));
    std::vector<DimAxes> assignments;
    enumerate(0, mesh.ndim(), empty, assignments);
    for (std::size_t j = 0; j < assignments.size(); ++j) {
      const DimAxes& dim_axes = assignments[j];
      const NamedSharding sharding(mesh, spec_of(dim_axes, ++spec_counter % 2 == 0));
      for (const auto& mult : multipliers) {
        Layout ref{sizes, dim_axes, {}};
        for (int d = 0; d < rank; ++d) ref.shape.push_back(ref.split_count(d) * mult[static_cast<std::size_t>(d)]);
        // Reshard target: the next assignment (cyclically) that divides this shape too; the
        // replicated one always does.
        Layout next_ref{sizes, {}, ref.shape};
        for (std::size_t step = 1; step <= assignments.size(); ++step) {
          next_ref.dim_axes = assignments[(j + step) % assignments.size()];
          bool fits = true;
          for (int d = 0; d < rank; ++d)
            fits = fits && ref.shape[static_cast<std::size_t>(d)] % next_ref.split_count(d) == 0;
          if (fits) break;
        }
        const NamedSharding next(mesh, spec_of(next_ref.dim_axes, spec_counter % 2 == 1));
        SCOPED_TRACE(sharding.to_string() + " on " + Shape(ref.shape).to_string());
        for_each_dtype([&]<class T>(std::type_identity<T>) {
          if (HasFailure()) return;  // one report per failing case, not one per dtype
          SCOPED_TRACE(std::string(to_string(dtype_v<T>)));
          const Array x = make_array<T>(ref.shape);
          for (Placement placement : {Placement::view_if_possible, Placement::copy}) {
            SCOPED_TRACE(std::string(to_string(placement)));
            const ShardedArray sa = ShardedArray::shard(x, sharding, {.placement = placement});
            ASSERT_TRUE(matches_reference<T>(sa, ref));
            ASSERT_TRUE(shares_as_expected(sa, x, placement, ref));
            ASSERT_TRUE(bitwise_equal(sa.gather(), x));
            const ShardedArray rs = sa.reshard(next, placement);
            ASSERT_TRUE(matches_reference<T>(rs, next_ref)) << "after reshard to " << next;
            ASSERT_TRUE(bitwise_equal(rs.gather(), x)) << "after reshard to " << next;
          }
        });
        if (HasFailure()) return;
      }
      // A split dimension one element longer than divisible throws, naming it.
      const Layout base{sizes, dim_axes, {}};
      for (int d = 0; d < rank; ++d) {
        const std::int64_t split = base.split_count(d);
        if (split == 1) continue;
        std::vector<std::int64_t> dims;
        for (int e = 0; e < rank; ++e) dims.push_back(e == d ? split + 1 : base.split_count(e));
        try {
          (void)ShardedArray::shard(Array::zeros(Shape(dims)), sharding, {.key = "w"});
          ADD_FAILURE() << sharding << " accepted " << Shape(dims).to_string();
        } catch (const InvalidArgumentError& e) {
          EXPECT_THAT(e.what(), AllOf(HasSubstr("shard: dimension " + std::to_string(d) + " of \"w\""),
                                      HasSubstr("has size " + std::to_string(split + 1)),
                                      HasSubstr("size " + std::to_string(split))));
        }
      }
    }
  }
}

std::string mesh_name(const ::testing::TestParamInfo<std::vector<int>>& info) {
  std::string name;
  for (std::size_t a = 0; a < info.param.size(); ++a)
    name += (a ? "_" : "") + kAxisNames[a] + std::to_string(info.param[a]);
  return name;
}

INSTANTIATE_TEST_SUITE_P(Meshes1D, ShardedArraySweep,
                         ::testing::Values(std::vector<int>{1}, std::vector<int>{2}, std::vector<int>{3},
                                           std::vector<int>{4}, std::vector<int>{5}, std::vector<int>{6},
                                           std::vector<int>{7}, std::vector<int>{8}),
                         mesh_name);
INSTANTIATE_TEST_SUITE_P(Meshes2D, ShardedArraySweep,
                         ::testing::Values(std::vector<int>{2, 2}, std::vector<int>{2, 3},
                                           std::vector<int>{3, 2}, std::vector<int>{2, 4},
                                           std::vector<int>{4, 2}, std::vector<int>{1, 5},
                                           std::vector<int>{5, 1}),
                         mesh_name);
INSTANTIATE_TEST_SUITE_P(Meshes3D, ShardedArraySweep,
                         ::testing::Values(std::vector<int>{2, 2, 2}, std::vector<int>{2, 1, 3}),
                         mesh_name);

// Devices listed out of id order: shards follow the mesh's order and coordinates, not device ids;
// and a reshard may move the array to a mesh of other devices.
TEST(ShardedArrayTest, MeshOrderAndReshardToOtherDevices) {
  std::vector<Device> reversed = test::first_devices(8);
  std::reverse(reversed.begin(), reversed.end());
  const Mesh mesh(reversed, {{"data", 2}, {"model", 4}});
  const Layout ref{{2, 4}, {{1}, {0}}, {12, 6}};
  const Array x = make_array<float>(ref.shape);
  const ShardedArray sa = ShardedArray::shard(x, NamedSharding(mesh, PartitionSpec{"model", "data"}));
  ASSERT_TRUE(matches_reference<float>(sa, ref));

  const std::vector<Device> all = test::first_devices(8);
  const Mesh other({all[5], all[2], all[6]}, {{"data", 3}});
  const ShardedArray moved = sa.reshard(NamedSharding(other, PartitionSpec{std::nullopt, "data"}));
  EXPECT_TRUE(matches_reference<float>(moved, Layout{{3}, {{}, {0}}, {12, 6}}));
  EXPECT_TRUE(bitwise_equal(moved.gather(), x));
  EXPECT_EQ(moved.gather().device(), all[5]);
}

// Assembling from caller-made shards: one per mesh device with the sharding's block shape.
TEST(ShardedArrayTest, ConstructFromShards) {
  const Mesh mesh = make_mesh({2});
  const NamedSharding sharding(mesh, PartitionSpec{"data"});
  const Array x = make_array<std::int32_t>({4, 3});
  std::vector<Shard> shards;
  for (int k = 0; k < 2; ++k) {
    const Device& device = mesh.devices()[static_cast<std::size_t>(k)];
    shards.push_back({device, x.slice(2 * k, 2 * k + 2).copy_to(device), {}});
  }
  const ShardedArray sa(Shape{4, 3}, DType::i32, sharding, shards);
  EXPECT_TRUE(matches_reference<std::int32_t>(sa, Layout{{2}, {{0}, {}}, {4, 3}}));  // index filled in
  EXPECT_TRUE(bitwise_equal(sa.gather(), x));

  EXPECT_THAT([&] { (void)ShardedArray(Shape{4, 3}, DType::i32, sharding, {shards[0]}); },
              ::testing::ThrowsMessage<InvalidArgumentError>(HasSubstr("1 shards given")));
  EXPECT_THAT([&] { (void)ShardedArray(Shape{4, 3}, DType::f32, sharding, shards); },
              ::testing::ThrowsMessage<InvalidArgumentError>(HasSubstr("expected f32[2, 3]")));
  EXPECT_THAT([&] { (void)ShardedArray(Shape{4, 3}, DType::i32, sharding, {shards[0], shards[0]}); },
              ::testing::ThrowsMessage<InvalidArgumentError>(HasSubstr("not for a distinct")));
  EXPECT_THAT([&] { (void)sa.shard_for(test::first_devices(3)[2]); },
              ::testing::ThrowsMessage<InvalidArgumentError>(HasSubstr("no shard on cpu:2")));
}

}  // namespace
}  // namespace datarax
