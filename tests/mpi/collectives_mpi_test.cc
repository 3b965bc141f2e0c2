// Every SPMD collective over meshes whose groups span processes (and, in the same meshes, groups
// that stay inside one), run under mpirun with 2..4 processes of 1..3 devices each (CTest sets
// the counts). Every process checks its own devices' results against formulas over the group's
// members: the expected values never come from the code under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "datarax/collectives.h"
#include "datarax/communicator.h"
#include "datarax/distributed/device_mesh_module.h"
#include "datarax/mesh.h"
#include "datarax/device_discovery.h"
#include "datarax/spmd.h"

namespace datarax {
namespace {

struct MeshCase {
  std::string name;
  Mesh mesh;
};

// Meshes over every device of the job: a line across all processes; ("data","model") with
// "model" inside each process and "data" across; the transpose of that, device order and all;
// and, where the device count allows, ("u","v") whose "u" groups pair devices of different or equal
// processes depending on the counts.
std::vector<MeshCase> meshes() {
  const std::vector<Device>& all = devices();
  const int n = static_cast<int>(all.size());
  const int p = process_count();
  const int l = local_device_count();
  std::vector<MeshCase> out;
  out.push_back({"line", Mesh(all, {{"x", n}})});
  if (n == p * l) {  // every process has the same count (CTest runs them so)
    out.push_back({"hybrid", distributed::DeviceMeshModule().create_hybrid_mesh(p, l)});
    std::vector<Device> transposed;
    for (int i = 0; i < l; ++i)
      for (int q = 0; q < p; ++q) transposed.push_back(all[static_cast<std::size_t>(q * l + i)]);
    out.push_back({"transposed", Mesh(transposed, {{"a", l}, {"b", p}})});
  }
  if (n % 2 == 0 && n >= 4) out.push_back({"pairs", Mesh(all, {{"u", 2}, {"v", n / 2}})});
  return out;
}

// The group over `axes` that `device` belongs to, and its rank there.
std::pair<std::vector<Device>, int> group_of(const Mesh& mesh, const std::vector<std::string>& axes,
                                             const Device& device) {
  for (const auto& g : mesh.groups(axes)) {
    const auto it = std::find(g.begin(), g.end(), device);
    if (it != g.end()) return {g, static_cast<int>(it - g.begin())};
  }
  ADD_FAILURE() << device << " is in no group";
  return {};
}

// Device d's input element i: small whole numbers, exact in f32 sums.
float value(const Device& d, std::int64_t i) { return static_cast<float>(d.id * 100 + (i % 97) - 40); }

Array input(const Device& d, std::int64_t count) {
  Array a = Array::empty(Shape({count}), DType::f32, d);
  auto v = a.data<float>();
  for (std::int64_t i = 0; i < count; ++i) v[static_cast<std::size_t>(i)] = value(d, i);
  return a;
}

std::vector<std::vector<std::string>> axis_sets(const Mesh& mesh) {
  std::vector<std::vector<std::string>> sets;
  for (const std::string& a : mesh.axis_names()) sets.push_back({a});
  if (mesh.axis_names().size() > 1) sets.push_back(mesh.axis_names());
  return sets;
}

AxisNames names_of(const std::vector<std::string>& axes) { return AxisNames(axes); }

class MpiCollectives : public ::testing::Test {
 protected:
  void SetUp() override {
    initialize();
    ASSERT_GE(process_count(), 2) << "run this program under mpirun with 2 or more processes";
  }

  // Runs check(device, group, rank, axes) on every local device of every mesh, for every axis set.
  template <class Check>
  void for_every_group(Check&& check) {
    for (const MeshCase& m : meshes())
      for (const auto& axes : axis_sets(m.mesh)) {
        SCOPED_TRACE(m.name + " " + m.mesh.to_string() + " over " + names_of(axes).to_string());
        run_spmd(m.mesh, [&](const Device& d) {
          const auto [group, rank] = group_of(m.mesh, axes, d);
          check(d, group, rank, names_of(axes));
        });
      }
  }
};

TEST_F(MpiCollectives, ReductionsMatchTheFormulaOverTheGroup) {
  for (std::int64_t count : {std::int64_t{1}, std::int64_t{1000}, std::int64_t{(1 << 18) + 7}}) {
    for_every_group([&](const Device& d, const std::vector<Device>& group, int, const AxisNames& axes) {
      const Array x = input(d, count);
      const Array sum = psum(x, axes), mean = pmean(x, axes), mx = pmax(x, axes), mn = pmin(x, axes);
      std::int64_t bad = 0;
      for (std::int64_t i = 0; i < count; ++i) {
        double s = 0, hi = -1e30, lo = 1e30;
        for (const Device& g : group) {
          s += value(g, i);
          hi = std::max<double>(hi, value(g, i));
          lo = std::min<double>(lo, value(g, i));
        }
        const auto k = static_cast<std::size_t>(i);
        bad += sum.data<float>()[k] != static_cast<float>(s) || mx.data<float>()[k] != static_cast<float>(hi) ||
               mn.data<float>()[k] != static_cast<float>(lo) ||
               std::abs(mean.data<float>()[k] - s / static_cast<double>(group.size())) > 1e-4 * (1 + std::abs(s));
      }
      EXPECT_EQ(bad, 0) << d << ": elements of " << count << " differ";
    });
  }
}

// 32 MiB per device: every process's ring chunk is 8 MiB or more, which the ring receives in
// segments (the counts leave the last segment and the chunks uneven).
TEST_F(MpiCollectives, LargeAllReduceInSegments) {
  const Mesh mesh(devices(), {{"x", device_count()}});
  const std::int64_t count = (std::int64_t{8} << 20) + 777;
  run_spmd(mesh, [&](const Device& d) {
    Array x = input(d, count);
    all_reduce_in_place(x, ReduceOp::sum, "x");
    std::int64_t bad = 0;
    for (std::int64_t i = 0; i < count; ++i) {
      float s = 0;
      for (const Device& g : devices()) s += value(g, i);
      bad += x.data<float>()[static_cast<std::size_t>(i)] != s;
    }
    EXPECT_EQ(bad, 0) << d;
  });
}

TEST_F(MpiCollectives, IntegerAndDoubleSumsAreExact) {
  for_every_group([&](const Device& d, const std::vector<Device>& group, int, const AxisNames& axes) {
    const Array i = psum(Array::from_vector<std::int64_t>({d.id, 1, -d.id * 3}, d), axes);
    const Array f = psum(Array::from_vector<double>({0.5 * d.id, 1e-3}, d), axes);
    std::int64_t ids = 0;
    for (const Device& g : group) ids += g.id;
    EXPECT_EQ(std::vector<std::int64_t>(i.data<std::int64_t>().begin(), i.data<std::int64_t>().end()),
              (std::vector<std::int64_t>{ids, static_cast<std::int64_t>(group.size()), -3 * ids}));
    EXPECT_DOUBLE_EQ(f.data<double>()[0], 0.5 * static_cast<double>(ids));
    EXPECT_NEAR(f.data<double>()[1], 1e-3 * static_cast<double>(group.size()), 1e-15);
  });
}

TEST_F(MpiCollectives, AllGatherStacksInRankOrder) {
  for_every_group([&](const Device& d, const std::vector<Device>& group, int, const AxisNames& axes) {
    const Array g = all_gather(input(d, 5), axes);
    ASSERT_EQ(g.shape(), Shape({static_cast<std::int64_t>(group.size()), 5}));
    for (std::size_t r = 0; r < group.size(); ++r)
      for (std::int64_t i = 0; i < 5; ++i)
        EXPECT_EQ(g.data<float>()[r * 5 + static_cast<std::size_t>(i)], value(group[r], i)) << d << " row " << r;
  });
}

TEST_F(MpiCollectives, AllGatherIntoInPlace) {
  for_every_group([&](const Device& d, const std::vector<Device>& group, int rank, const AxisNames& axes) {
    const auto n = static_cast<std::int64_t>(group.size());
    Array out = Array::zeros(Shape({n * 4}), DType::f32, d);
    Array mine = out.slice(rank * 4, rank * 4 + 4);
    for (std::int64_t i = 0; i < 4; ++i) mine.data<float>()[static_cast<std::size_t>(i)] = value(d, i);
    all_gather_into(mine, out, axes);
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t i = 0; i < 4; ++i)
        EXPECT_EQ(out.data<float>()[static_cast<std::size_t>(r * 4 + i)], value(group[static_cast<std::size_t>(r)], i));
  });
}

TEST_F(MpiCollectives, PsumScatterAndReduceScatterIntoGiveTheRanksBlock) {
  for_every_group([&](const Device& d, const std::vector<Device>& group, int rank, const AxisNames& axes) {
    const auto n = static_cast<std::int64_t>(group.size());
    const std::int64_t per = 3;
    const Array x = input(d, n * per);
    const Array tiled = psum_scatter(x, axes, /*tiled=*/true);
    Array into = Array::zeros(Shape({per}), DType::f32, d);
    reduce_scatter_into(x, into, ReduceOp::max, axes);
    ASSERT_EQ(tiled.shape(), Shape({per}));
    for (std::int64_t j = 0; j < per; ++j) {
      const std::int64_t i = rank * per + j;
      float s = 0, hi = -1e30f;
      for (const Device& g : group) {
        s += value(g, i);
        hi = std::max(hi, value(g, i));
      }
      EXPECT_EQ(tiled.data<float>()[static_cast<std::size_t>(j)], s) << d;
      EXPECT_EQ(into.data<float>()[static_cast<std::size_t>(j)], hi) << d;
    }
  });
}

TEST_F(MpiCollectives, PpermuteShiftsAlongTheRing) {
  for_every_group([&](const Device& d, const std::vector<Device>& group, int rank, const AxisNames& axes) {
    const int n = static_cast<int>(group.size());
    std::vector<std::pair<int, int>> perm;
    for (int r = 0; r < n; ++r) perm.emplace_back(r, (r + 1) % n);
    const Array out = ppermute(input(d, 6), axes, perm);
    const Device& from = group[static_cast<std::size_t>((rank + n - 1) % n)];
    for (std::int64_t i = 0; i < 6; ++i) EXPECT_EQ(out.data<float>()[static_cast<std::size_t>(i)], value(from, i)) << d;
    // A pair list that leaves rank 0 out: it gets zeros.
    if (n >= 2) {
      const Array z = ppermute(input(d, 2), axes, {{0, 1}});
      const float expect0 = rank == 1 ? value(group[0], 0) : 0.0f;
      EXPECT_EQ(z.data<float>()[0], expect0) << d;
    }
  });
}

TEST_F(MpiCollectives, AllToAllTransposesBlocks) {
  for_every_group([&](const Device& d, const std::vector<Device>& group, int rank, const AxisNames& axes) {
    const auto n = static_cast<std::int64_t>(group.size());
    const Array out = all_to_all(input(d, n * 2), axes);
    ASSERT_EQ(out.shape(), Shape({n * 2}));
    // Block j of the result is member j's block `rank`.
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t k = 0; k < 2; ++k)
        EXPECT_EQ(out.data<float>()[static_cast<std::size_t>(j * 2 + k)],
                  value(group[static_cast<std::size_t>(j)], rank * 2 + k)) << d;
  });
}

TEST_F(MpiCollectives, AxisIndexSizeAndBarrier) {
  for_every_group([&](const Device&, const std::vector<Device>& group, int rank, const AxisNames& axes) {
    EXPECT_EQ(axis_index(axes), rank);
    EXPECT_EQ(axis_size(axes), static_cast<int>(group.size()));
    for (int k = 0; k < 3; ++k) barrier(axes);
  });
}

TEST_F(MpiCollectives, AllReduceInPlaceOnATree) {
  for_every_group([&](const Device& d, const std::vector<Device>& group, int, const AxisNames& axes) {
    Tree t{{"a", input(d, 10)}, {"b", Array::from_vector<double>({1.0 * d.id}, d)}};
    all_reduce_in_place(t, ReduceOp::mean, axes);
    double ids = 0;
    for (const Device& g : group) ids += g.id;
    EXPECT_DOUBLE_EQ(t.at("b").data<double>()[0], ids / static_cast<double>(group.size()));
    float s = 0;
    for (const Device& g : group) s += value(g, 3);
    EXPECT_NEAR(t.at("a").data<float>()[3], s / static_cast<float>(group.size()), 1e-4);
  });
}

// Runs psum with `count(d)` elements on every device d of a line over all devices: the counts
// differ somewhere, so every device of every process must throw a mismatch.
template <class Count>
void expect_mismatch_everywhere(const Mesh& mesh, Count&& count) {
  std::atomic<int> threw{0};
  EXPECT_THROW(run_spmd(mesh, [&](const Device& d) {
                 try {
                   psum(input(d, count(d)), "x");
                 } catch (const CollectiveError& e) {
                   EXPECT_NE(std::string(e.what()).find("mismatched collectives"), std::string::npos) << e.what();
                   ++threw;
                   throw;
                 }
               }),
               DeviceError);
  EXPECT_EQ(threw.load(), local_device_count());
}

// A call that differs between processes throws on every device of every process, naming both
// sides, and the group stays usable afterwards.
TEST_F(MpiCollectives, MismatchAcrossProcessesThrowsEverywhere) {
  const Mesh mesh(devices(), {{"x", device_count()}});
  expect_mismatch_everywhere(mesh, [](const Device& d) { return d.process_index == 0 ? 4 : 5; });
  run_spmd(mesh, [&](const Device& d) {
    EXPECT_EQ(psum(input(d, 1), "x").data<float>()[0], [&] {
      float s = 0;
      for (const Device& g : devices()) s += value(g, 0);
      return s;
    }());
  });
}

// A mismatch among one process's own devices in a group that spans processes: that process's
// leader tells the others, so every device of every process throws and the job goes on.
TEST_F(MpiCollectives, MismatchInsideOneProcessThrowsEverywhere) {
  if (local_device_count() < 2) GTEST_SKIP() << "needs 2 or more devices per process";
  const Mesh mesh(devices(), {{"x", device_count()}});
  expect_mismatch_everywhere(mesh, [](const Device& d) { return d.process_index == 0 && d.local_index == 1 ? 5 : 4; });
  run_spmd(mesh, [&](const Device& d) { EXPECT_EQ(axis_size("x"), device_count()) << d; barrier("x"); });
}

}  // namespace
}  // namespace datarax
