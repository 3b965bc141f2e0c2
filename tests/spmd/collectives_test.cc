// Every named-axis collective, run inside run_spmd, against a naive gather-then-reduce reference
// written here: 1-D meshes of 1..8 devices, 2-D and 3-D meshes with the collective over each axis
// and over several (in both orders: the group rank follows the order given), sizes 0, 1, 7, 1000
// (and 1<<20 for a few), dtypes f32, f64, i32, bf16. Inputs are small integers from a formula of
// (device, element), so sums, maxima and minima are exact in every dtype and must match exactly;
// means are compared within one rounding. Each configuration runs twice, bitwise identical.
//
// The reference knows nothing of Mesh::groups: it finds a device's group from row-major
// coordinates itself. Then: meshes of devices in any order, failures in the middle of a sequence of
// collectives, devices running behind, barriers, summation order, and the error messages.
#include "datarax/collectives.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <thread>

#include "datarax/spmd.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;
using Axes = std::vector<std::string>;

// The input of the device at flat mesh position p, element i; `salt` tells inputs apart. It
// repeats every kPeriod elements.
constexpr std::int64_t kPeriod = 11;
double value(int p, std::int64_t i, int salt = 0) {
  return static_cast<double>((p * 7 + i * 3 + salt * 5) % kPeriod) - 5.0;
}

// Row-major geometry of a mesh, and a device's group over some axes, computed from coordinates.
struct Geometry {
  std::vector<int> shape;
  std::vector<int> pos;  // positions of the collective's axes, in the order given

  Geometry(const std::vector<MeshAxis>& axes, const Axes& over) {
    for (const auto& [name, size] : axes) shape.push_back(size);
    for (const std::string& a : over)
      for (std::size_t k = 0; k < axes.size(); ++k)
        if (axes[k].first == a) pos.push_back(static_cast<int>(k));
  }
  int devices() const {
    int n = 1;
    for (int s : shape) n *= s;
    return n;
  }
  std::vector<int> coords(int flat) const {
    std::vector<int> c(shape.size());
    for (std::size_t k = shape.size(); k-- > 0;) {
      c[k] = flat % shape[k];
      flat /= shape[k];
    }
    return c;
  }
  int flat(const std::vector<int>& c) const {
    int f = 0;
    for (std::size_t k = 0; k < shape.size(); ++k) f = f * shape[k] + c[k];
    return f;
  }
  // The members of p's group by rank: p's coordinates with the collective's axes counted
  // row-major in the order given (the last given fastest).
  std::vector<int> group(int p) const {
    int n = 1;
    for (int q : pos) n *= shape[static_cast<std::size_t>(q)];
    std::vector<int> out;
    std::vector<int> c = coords(p);
    for (int r = 0; r < n; ++r) {
      int rest = r;
      for (std::size_t k = pos.size(); k-- > 0;) {
        const auto q = static_cast<std::size_t>(pos[k]);
        c[q] = rest % shape[q];
        rest /= shape[q];
      }
      out.push_back(flat(c));
    }
    return out;
  }
};

// Device p's input of that shape: value(p, i, salt) at flat index i. The values repeat every
// kPeriod elements, which makes filling large inputs cheap.
Array input(const Shape& shape, DType dtype, int p, int salt) {
  Array a = Array::empty(shape, dtype);
  visit_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    std::array<T, kPeriod> cycle;
    for (std::int64_t i = 0; i < kPeriod; ++i)
      cycle[static_cast<std::size_t>(i)] = static_cast<T>(static_cast<float>(value(p, i, salt)));
    std::size_t k = 0;
    for (T& e : a.data<T>()) {
      e = cycle[k];
      k = k + 1 == cycle.size() ? 0 : k + 1;
    }
  });
  return a;
}

// The wanted value of element i (row-major) of a result.
using Want = std::function<double(std::int64_t)>;

// Relative size of one rounding in a dtype.
double eps(DType dtype) {
  switch (dtype) {
    case DType::f64: return 0x1p-52;
    case DType::f32: return 0x1p-23;
    case DType::bf16: return 0x1p-7;
    default: return 0.0;
  }
}

// got has the dtype, shape and values wanted; values exactly, or within `rel` of each.
::testing::AssertionResult matches(const Array& got, DType dtype, const Shape& shape, const Want& want,
                                   double rel = 0.0) {
  if (got.dtype() != dtype || got.shape() != shape)
    return ::testing::AssertionFailure() << "got " << to_string(got.dtype()) << got.shape().to_string()
                                         << ", want " << to_string(dtype) << shape.to_string();
  return visit_dtype(got.dtype(), [&](auto t) -> ::testing::AssertionResult {
    using T = decltype(t);
    const auto data = got.data<T>();
    for (std::size_t i = 0; i < data.size(); ++i) {
      double g = 0;
      if constexpr (std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>)
        g = static_cast<float>(data[i]);
      else
        g = static_cast<double>(data[i]);
      const double w = want(static_cast<std::int64_t>(i));
      if (!(std::abs(g - w) <= rel * std::abs(w)))
        return ::testing::AssertionFailure() << "element " << i << ": got " << g << ", want " << w;
    }
    return ::testing::AssertionSuccess();
  });
}

// value() repeats every kPeriod elements, so a reduction's reference is a table over i % kPeriod.

struct Reductions {
  std::array<double, kPeriod> sum{}, max{}, min{};
};

// Gather every member's input, then combine: the oracle for psum/pmean/pmax/pmin/psum_scatter.
Reductions reduce_ref(const std::vector<int>& group, int salt) {
  Reductions r;
  for (std::int64_t i = 0; i < kPeriod; ++i) {
    std::vector<double> vals;
    for (int q : group) vals.push_back(value(q, i, salt));
    const auto k = static_cast<std::size_t>(i);
    for (double v : vals) r.sum[k] += v;
    r.max[k] = *std::max_element(vals.begin(), vals.end());
    r.min[k] = *std::min_element(vals.begin(), vals.end());
  }
  return r;
}

Want table(const std::array<double, kPeriod>& t, std::int64_t offset = 0, double scale = 1.0) {
  return [&t, offset, scale](std::int64_t i) { return t[static_cast<std::size_t>((offset + i) % kPeriod)] * scale; };
}

// ppermute's pairs: a ring shift by one, except that rank 0 sends nothing when n > 2, so that
// rank 1 receives zeros.
std::vector<std::pair<int, int>> ring(int n) {
  std::vector<std::pair<int, int>> perm;
  for (int k = (n > 2 ? 1 : 0); k < n; ++k) perm.emplace_back(k, (k + 1) % n);
  return perm;
}

// The tree inputs: a vector, a matrix and (for reductions) a scalar, each with its own salt.
Tree tree_input(int p, std::int64_t s, DType dtype, bool with_scalar) {
  Tree t{{"a", input({s}, dtype, p, 3)}, {"b/c", input({2, s}, dtype, p, 4)}};
  if (with_scalar) t.set("s", input({}, dtype, p, 5));
  return t;
}

// Runs every collective once over `over` on every device of a mesh of `devs` (row-major); returns
// each device's results by flat mesh position, as a tree. `large`: only the reductions, the
// scatters, ppermute and all_to_all, to keep memory and time small.
std::vector<Tree> run_all(const std::vector<MeshAxis>& axes, const Axes& over, std::int64_t s,
                          DType dtype, bool large, const std::vector<Device>& devs) {
  const Geometry geo(axes, over);
  const Mesh mesh(devs, axes);
  const int n = static_cast<int>(geo.group(0).size());
  std::vector<Tree> results(devs.size());
  std::vector<std::atomic<int>> arrived(devs.size());
  run_spmd(mesh, [&](const Device& d) {
    const int p = static_cast<int>(std::find(devs.begin(), devs.end(), d) - devs.begin());
    const auto in = [&](Shape shape, int salt) { return input(shape, dtype, p, salt); };
    Tree out;
    const Array x = in({s}, 0), xs = in({n, s}, 1), xt = in({n * s}, 2);
    out.set("psum", psum(x, over));
    out.set("pmean", pmean(x, over));
    out.set("pmax", pmax(x, over));
    out.set("pmin", pmin(x, over));
    out.set("scatter", psum_scatter(xs, over));
    out.set("scatter_tiled", psum_scatter(xt, over, true));
    out.set("ppermute", ppermute(x, over, ring(n)));
    out.set("all_to_all", all_to_all(xt, over));
    out.set("index", Array::scalar<std::int32_t>(axis_index(over)));
    out.set("size", Array::scalar<std::int32_t>(axis_size(over)));
    arrived[static_cast<std::size_t>(p)].store(1);
    barrier(over);
    int all_arrived = 1;
    for (int q : geo.group(p)) all_arrived &= arrived[static_cast<std::size_t>(q)].load();
    out.set("barrier", Array::scalar<std::int32_t>(all_arrived));
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min}) {
      if ((op == ReduceOp::mean && !is_floating(dtype)) || (large && op != ReduceOp::sum)) continue;
      Array y = in({s}, 0);
      all_reduce_in_place(y, op, over);
      out.set("in_place/" + std::string(to_string(op)), y);
    }
    if (!large) {
      out.set("gather", all_gather(x, over));
      out.set("gather_tiled", all_gather(x, over, true));
      const Tree t = tree_input(p, s, dtype, true), u = tree_input(p, s, dtype, false);
      Tree v = tree_input(p, s, dtype, true);
      all_reduce_in_place(v, ReduceOp::min, over);
      for (auto& [prefix, tree] : std::vector<std::pair<std::string, Tree>>{
               {"tree_psum", psum(t, over)}, {"tree_pmean", pmean(t, over)}, {"tree_pmax", pmax(t, over)},
               {"tree_pmin", pmin(t, over)}, {"tree_in_place_min", v}, {"tree_gather", all_gather(u, over)},
               {"tree_gather_tiled", all_gather(u, over, true)}})
        for (const auto& [key, leaf] : tree) out.set(prefix + "/" + key, leaf);
      out.set("x", x);  // after all that, still the input: collectives leave it untouched
    }
    results[static_cast<std::size_t>(p)] = out;
  });
  return results;
}

// Checks one device's results against the reference.
void verify(const Geometry& geo, int p, const Tree& out, std::int64_t s, DType dtype, bool large) {
  SCOPED_TRACE("device at flat position " + std::to_string(p));
  const std::vector<int> g = geo.group(p);
  const int n = static_cast<int>(g.size());
  const int r = static_cast<int>(std::find(g.begin(), g.end(), p) - g.begin());
  const DType mean_dtype = is_floating(dtype) ? dtype : DType::f64;
  const Reductions red = reduce_ref(g, 0), blocks = reduce_ref(g, 1), tiles = reduce_ref(g, 2);
  EXPECT_TRUE(matches(out.at("psum"), dtype, {s}, table(red.sum)));
  EXPECT_TRUE(matches(out.at("pmean"), mean_dtype, {s}, table(red.sum, 0, 1.0 / n), eps(mean_dtype)));
  EXPECT_TRUE(matches(out.at("pmax"), dtype, {s}, table(red.max)));
  EXPECT_TRUE(matches(out.at("pmin"), dtype, {s}, table(red.min)));
  EXPECT_TRUE(matches(out.at("in_place/sum"), dtype, {s}, table(red.sum)));
  // Member r's block of the sum: elements r*s .. r*s+s-1 of the members' inputs, summed.
  EXPECT_TRUE(matches(out.at("scatter"), dtype, {s}, table(blocks.sum, r * s)));
  EXPECT_TRUE(matches(out.at("scatter_tiled"), dtype, {s}, table(tiles.sum, r * s)));
  const int source = (r - 1 + n) % n;
  EXPECT_TRUE(matches(out.at("ppermute"), dtype, {s}, [&](std::int64_t i) {
    return n > 2 && source == 0 ? 0.0 : value(g[static_cast<std::size_t>(source)], i);
  }));
  // Block j of the result is block r of member j's input.
  EXPECT_TRUE(matches(out.at("all_to_all"), dtype, {n * s}, [&](std::int64_t i) {
    return value(g[static_cast<std::size_t>(i / s)], r * s + i % s, 2);
  }));
  EXPECT_EQ(out.at("index").item<std::int32_t>(), r);
  EXPECT_EQ(out.at("size").item<std::int32_t>(), n);
  EXPECT_EQ(out.at("barrier").item<std::int32_t>(), 1) << "barrier returned before every member arrived";
  if (large) return;

  EXPECT_TRUE(matches(out.at("x"), dtype, {s}, [&](std::int64_t i) { return value(p, i); }));
  EXPECT_TRUE(matches(out.at("in_place/max"), dtype, {s}, table(red.max)));
  EXPECT_TRUE(matches(out.at("in_place/min"), dtype, {s}, table(red.min)));
  if (is_floating(dtype)) {
    EXPECT_TRUE(matches(out.at("in_place/mean"), dtype, {s}, table(red.sum, 0, 1.0 / n), eps(dtype)));
  }
  const Want gathered = [&](std::int64_t i) { return value(g[static_cast<std::size_t>(i / s)], i % s); };
  EXPECT_TRUE(matches(out.at("gather"), dtype, {n, s}, gathered));
  EXPECT_TRUE(matches(out.at("gather_tiled"), dtype, {n * s}, gathered));
  const std::map<std::string, std::pair<Shape, int>> leaves = {{"a", {Shape{s}, 3}}, {"b/c", {Shape{2, s}, 4}},
                                                                {"s", {Shape{}, 5}}};
  for (const auto& [key, leaf] : leaves) {
    SCOPED_TRACE("tree leaf " + key);
    const Shape& shape = leaf.first;
    const int salt = leaf.second;
    const Reductions t = reduce_ref(g, salt);
    EXPECT_TRUE(matches(out.at("tree_psum/" + key), dtype, shape, table(t.sum)));
    EXPECT_TRUE(matches(out.at("tree_pmean/" + key), mean_dtype, shape, table(t.sum, 0, 1.0 / n), eps(mean_dtype)));
    EXPECT_TRUE(matches(out.at("tree_pmax/" + key), dtype, shape, table(t.max)));
    EXPECT_TRUE(matches(out.at("tree_pmin/" + key), dtype, shape, table(t.min)));
    EXPECT_TRUE(matches(out.at("tree_in_place_min/" + key), dtype, shape, table(t.min)));
    if (key == "s") continue;  // the gathers use the tree without the scalar
    const std::int64_t m = shape.numel();
    const Want all = [&](std::int64_t i) { return value(g[static_cast<std::size_t>(i / m)], i % m, salt); };
    std::vector<std::int64_t> stacked = shape.dims(), tiled = shape.dims();
    stacked.insert(stacked.begin(), n);
    tiled[0] *= n;
    EXPECT_TRUE(matches(out.at("tree_gather/" + key), dtype, Shape(stacked), all));
    EXPECT_TRUE(matches(out.at("tree_gather_tiled/" + key), dtype, Shape(tiled), all));
  }
}

// A hash of every leaf's key, dtype, shape and bytes.
std::size_t digest(const Tree& tree) {
  std::size_t h = 0;
  for (const auto& [key, leaf] : tree) {
    const auto b = leaf.bytes();
    h = h * 1000003 ^ std::hash<std::string>{}(key + std::string(to_string(leaf.dtype())) + leaf.shape().to_string());
    h = h * 1000003 ^ std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  }
  return h;
}

// One configuration: run twice, check both runs are bitwise identical and match the reference.
// Large results are compared by a hash, so that two runs' worth of them are never held at once.
// `devs`: the mesh's devices, row-major; by default the first ones in order.
void check(const std::vector<MeshAxis>& axes, const Axes& over, std::int64_t s, DType dtype, bool large = false,
           std::vector<Device> devs = {}) {
  std::string mesh;
  for (const auto& [name, size] : axes) mesh += (mesh.empty() ? "" : ", ") + name + "=" + std::to_string(size);
  SCOPED_TRACE("mesh (" + mesh + ") over " + AxisNames(over).to_string() + ", size " + std::to_string(s) + ", " +
               std::string(to_string(dtype)));
  const Geometry geo(axes, over);
  if (devs.empty()) devs = test::first_devices(geo.devices());
  std::vector<Tree> first = run_all(axes, over, s, dtype, large, devs);
  std::vector<std::size_t> digests;
  for (int p = 0; p < geo.devices(); ++p) {
    verify(geo, p, first[static_cast<std::size_t>(p)], s, dtype, large);
    digests.push_back(digest(first[static_cast<std::size_t>(p)]));
  }
  if (large) first.clear();
  const std::vector<Tree> second = run_all(axes, over, s, dtype, large, devs);
  for (std::size_t p = 0; p < second.size(); ++p) {
    if (large)
      EXPECT_EQ(digest(second[p]), digests[p]) << "device " << p << ": two runs differ";
    else
      EXPECT_TRUE(bitwise_equal(first[p], second[p])) << "device " << p << ": two runs differ";
  }
}

const std::vector<DType> kDTypes = {DType::f32, DType::f64, DType::i32, DType::bf16};
const std::vector<std::int64_t> kSizes = {0, 1, 7, 1000};

void sweep(const std::vector<MeshAxis>& axes, const std::vector<Axes>& overs) {
  for (const Axes& over : overs)
    for (DType dtype : kDTypes)
      for (std::int64_t s : kSizes) {
        check(axes, over, s, dtype);
        if (::testing::Test::HasFailure()) return;  // one failing configuration is enough to read
      }
}

TEST(Collectives, OneDimensionalMeshesOf1To8Devices) {
  for (int n = 1; n <= 8; ++n) sweep({{"data", n}}, {{"data"}});
}

TEST(Collectives, TwoDimensionalMeshesOverEachAxisAndBothInEitherOrder) {
  for (auto shape : {std::pair{2, 3}, std::pair{2, 4}, std::pair{4, 2}})
    sweep({{"a", shape.first}, {"b", shape.second}}, {{"a"}, {"b"}, {"a", "b"}, {"b", "a"}});
}

TEST(Collectives, ThreeDimensionalMeshesOverOneTwoAndThreeAxes) {
  sweep({{"a", 2}, {"b", 2}, {"c", 2}}, {{"a"}, {"b"}, {"c"}, {"a", "c"}, {"c", "a"}, {"c", "b", "a"}});
  sweep({{"a", 2}, {"b", 1}, {"c", 3}}, {{"b"}, {"c"}, {"a", "c"}, {"c", "a"}, {"a", "b", "c"}});
}

// Sanitizer builds run a smaller largest size: they are 10-50x slower.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::int64_t kLarge = 1 << 16;
#else
constexpr std::int64_t kLarge = 1 << 20;
#endif

TEST(Collectives, LargeArrays) {
  check({{"data", 5}}, {"data"}, kLarge, DType::f32, true);
  check({{"data", 3}}, {"data"}, kLarge, DType::f64, true);
  check({{"a", 2}, {"b", 4}}, {"b", "a"}, kLarge, DType::bf16, true);
  check({{"a", 2}, {"b", 1}, {"c", 3}}, {"c", "a"}, kLarge, DType::i32, true);
}

// A mesh may list its devices in any order: groups and ranks follow mesh positions, not ids.
TEST(Collectives, AMeshOfDevicesInAnyOrder) {
  const std::vector<Device> all = test::first_devices(8);
  std::vector<Device> devs;
  for (int id : {6, 3, 1, 0, 7, 4}) devs.push_back(all[static_cast<std::size_t>(id)]);
  for (const Axes& over : {Axes{"a"}, Axes{"b"}, Axes{"b", "a"}})
    for (DType dtype : {DType::f32, DType::i32}) check({{"a", 2}, {"b", 3}}, over, 7, dtype, false, devs);
}

// A device that fails at any point of a sequence of collectives over different axes is the one
// reported, and the groups work normally in the next launch.
TEST(Collectives, AFailureAnywhereInASequenceLeavesTheGroupsUsable) {
  const std::vector<Device> devs = test::first_devices(8);
  const Mesh mesh(devs, {{"a", 2}, {"b", 4}});
  const std::vector<AxisNames> overs = {AxisNames("a"), AxisNames("b"), AxisNames({"b", "a"}), AxisNames({"a", "b"})};
  std::uint32_t seed = 12345;
  auto next = [&seed](std::uint32_t n) {  // a small linear congruential generator: the same every run
    seed = seed * 1664525u + 1013904223u;
    return (seed >> 16) % n;
  };
  for (int it = 0; it < 60; ++it) {
    const int victim = static_cast<int>(next(8)), when = static_cast<int>(next(12));
    SCOPED_TRACE("cpu:" + std::to_string(victim) + " fails before collective " + std::to_string(when));
    try {
      run_spmd(mesh, [&](const Device& d) {
        for (int k = 0; k < 12; ++k) {
          if (d.id == victim && k == when) throw std::runtime_error("boom");
          psum(Array::full({static_cast<std::int64_t>(1 + k * 37)}, 1.0), overs[static_cast<std::size_t>(k % 4)]);
        }
      }, {.timeout = std::chrono::seconds(30)});
      ADD_FAILURE() << "no error";
    } catch (const DeviceError& e) {
      EXPECT_EQ(e.device().id, victim);
      EXPECT_STREQ(e.what(), ("device cpu:" + std::to_string(victim) + ": boom").c_str());
    }
    std::vector<float> got(8);
    run_spmd(mesh, [&](const Device& d) {
      float sum = 0;
      for (const AxisNames& over : overs) sum += psum(Array::full({3}, d.id), over).data<float>()[1];
      got[static_cast<std::size_t>(d.id)] = sum;
    });
    for (int id = 0; id < 8; ++id) {
      const int a = id / 4, b = id % 4;  // over a: ids b and 4 + b; over b: 4a .. 4a+3; over both: 0..7
      EXPECT_EQ(got[static_cast<std::size_t>(id)], static_cast<float>((2 * b + 4) + (16 * a + 6) + 28 + 28)) << id;
    }
    if (::testing::Test::HasFailure()) return;
  }
}

// Devices need not move in lockstep: one still in a collective over one axis while another
// already waits for it in the next collective, over another axis, is a slow device, not a
// mismatch (it used to be reported as one after 20 ms).
TEST(Collectives, ADeviceBehindOverAnotherAxisIsNotAMismatch) {
  const Mesh mesh(test::first_devices(8), {{"a", 2}, {"b", 2}, {"c", 2}});
  std::vector<float> got(8);
  run_spmd(mesh, [&](const Device& d) {
    if (d.id == 7) std::this_thread::sleep_for(std::chrono::milliseconds(150));
    float sum = psum(Array::full({2}, 1.0), "a").data<float>()[0];
    sum += psum(Array::full({2}, 1.0), "b").data<float>()[0];
    sum += psum(Array::full({2}, 1.0), {"c", "a"}).data<float>()[0];
    got[static_cast<std::size_t>(d.id)] = sum;
  }, {.timeout = std::chrono::seconds(30)});
  EXPECT_EQ(got, std::vector<float>(8, 2.0f + 2.0f + 4.0f));
}

// The last member of each group arrives late; nobody may leave the barrier before it arrived.
TEST(Collectives, BarrierWaitsForTheLastMember) {
  const std::vector<MeshAxis> axes = {{"a", 2}, {"b", 4}};
  const std::vector<Device> devs = test::first_devices(8);
  const Mesh mesh(devs, axes);
  for (const Axes& over : {Axes{"a"}, Axes{"b"}, Axes{"b", "a"}}) {
    SCOPED_TRACE(AxisNames(over).to_string());
    const Geometry geo(axes, over);
    std::vector<std::atomic<int>> arrived(8);
    std::vector<int> early(8, 0);
    run_spmd(mesh, [&](const Device& d) {
      const int p = static_cast<int>(std::find(devs.begin(), devs.end(), d) - devs.begin());
      if (axis_index(over) == axis_size(over) - 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      arrived[static_cast<std::size_t>(p)].store(1);
      barrier(over);
      for (int q : geo.group(p)) early[static_cast<std::size_t>(p)] += 1 - arrived[static_cast<std::size_t>(q)].load();
    });
    EXPECT_EQ(early, std::vector<int>(8, 0));
  }
}

// Sums of non-integer floats depend on the order of the additions: the contract is rank order
// (accumulating in f32 for bf16, rounding once), the same on every member and on every run.
TEST(Collectives, NonIntegerSumsAddInRankOrderIdenticallyOnEveryMemberAndRun) {
  const std::vector<MeshAxis> axes = {{"a", 2}, {"b", 2}, {"c", 2}};
  const Axes over = {"c", "a"};
  const Geometry geo(axes, over);
  const std::vector<Device> devs = test::first_devices(8);
  const Mesh mesh(devs, axes);
  constexpr std::int64_t kCount = 5003;
  auto noise = [](int p, std::int64_t i) { return std::sin(static_cast<float>(i * (p + 1))) * 1e3f; };
  for (DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(std::string(to_string(dtype)));
    std::vector<std::vector<Array>> runs;
    for (int run = 0; run < 3; ++run) {
      std::vector<Array> sums(devs.size());
      run_spmd(mesh, [&](const Device& d) {
        const int p = static_cast<int>(std::find(devs.begin(), devs.end(), d) - devs.begin());
        Array x = Array::empty({kCount}, DType::f32);
        for (std::int64_t i = 0; i < kCount; ++i) x.data<float>()[static_cast<std::size_t>(i)] = noise(p, i);
        sums[static_cast<std::size_t>(p)] = psum(x.astype(dtype), over);
      });
      runs.push_back(sums);
    }
    for (int p = 0; p < 8; ++p) {
      const auto k = static_cast<std::size_t>(p);
      EXPECT_TRUE(bitwise_equal(runs[0][k], runs[1][k]) && bitwise_equal(runs[0][k], runs[2][k])) << p;
      const std::vector<int> g = geo.group(p);
      EXPECT_TRUE(bitwise_equal(runs[0][k], runs[0][static_cast<std::size_t>(g[0])])) << p;
      EXPECT_TRUE(matches(runs[0][k], dtype, {kCount}, [&](std::int64_t i) {
        auto as_input = [&](int q) {  // what member q contributed, in the dtype
          return dtype == DType::bf16 ? static_cast<float>(bfloat16(noise(q, i))) : noise(q, i);
        };
        float acc = as_input(g[0]);
        for (std::size_t r = 1; r < g.size(); ++r) acc += as_input(g[r]);
        return dtype == DType::bf16 ? static_cast<float>(bfloat16(acc)) : acc;
      }));
    }
  }
}

// The group rank order follows the order the axes are given, spelled out on a 2x3 mesh.
TEST(Collectives, GroupRankFollowsTheOrderOfTheAxesGiven) {
  const Mesh mesh(test::first_devices(6), {{"a", 2}, {"b", 3}});
  std::vector<int> ab(6), ba(6);
  std::vector<Array> gathered(6);
  run_spmd(mesh, [&](const Device& d) {
    const auto id = static_cast<std::size_t>(d.id);
    ab[id] = axis_index({"a", "b"});
    ba[id] = axis_index({"b", "a"});
    gathered[id] = all_gather(Array::scalar<std::int32_t>(d.id), {"b", "a"});
  });
  // Device id = a * 3 + b. Over (a, b) the rank is a * 3 + b; over (b, a) it is b * 2 + a.
  EXPECT_EQ(ab, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(ba, (std::vector<int>{0, 2, 4, 1, 3, 5}));
  const std::vector<int> order = {0, 3, 1, 4, 2, 5};
  for (const Array& g : gathered)
    EXPECT_TRUE(matches(g, DType::i32, {6}, [&](std::int64_t i) { return order[static_cast<std::size_t>(i)]; }));
}

// Every collective by name, called with the axes given: for the error tests.
const std::vector<std::pair<std::string, std::function<void(const AxisNames&)>>>& every_collective() {
  static const auto* all = new std::vector<std::pair<std::string, std::function<void(const AxisNames&)>>>{
      {"psum", [](const AxisNames& a) { psum(Array::full({6}, 1.0), a); }},
      {"pmean", [](const AxisNames& a) { pmean(Array::full({6}, 1.0), a); }},
      {"pmax", [](const AxisNames& a) { pmax(Array::full({6}, 1.0), a); }},
      {"pmin", [](const AxisNames& a) { pmin(Array::full({6}, 1.0), a); }},
      {"psum", [](const AxisNames& a) { psum(Tree{{"k", Array::full({6}, 1.0)}}, a); }},
      {"pmean", [](const AxisNames& a) { pmean(Tree{{"k", Array::full({6}, 1.0)}}, a); }},
      {"all_gather", [](const AxisNames& a) { all_gather(Array::full({6}, 1.0), a); }},
      {"all_gather", [](const AxisNames& a) { all_gather(Tree{{"k", Array::full({6}, 1.0)}}, a, true); }},
      {"psum_scatter", [](const AxisNames& a) { psum_scatter(Array::full({6}, 1.0), a, true); }},
      {"ppermute", [](const AxisNames& a) { ppermute(Array::full({6}, 1.0), a, {{0, 0}}); }},
      {"all_to_all", [](const AxisNames& a) { all_to_all(Array::full({6}, 1.0), a); }},
      {"axis_index", [](const AxisNames& a) { axis_index(a); }},
      {"axis_size", [](const AxisNames& a) { axis_size(a); }},
      {"barrier", [](const AxisNames& a) { barrier(a); }},
      {"all_reduce_in_place", [](const AxisNames& a) {
         Array x = Array::full({6}, 1.0);
         all_reduce_in_place(x, ReduceOp::sum, a);
       }},
      {"all_reduce_in_place", [](const AxisNames& a) {
         Tree t{{"k", Array::full({6}, 1.0)}};
         all_reduce_in_place(t, ReduceOp::sum, a);
       }},
  };
  return *all;
}

TEST(CollectivesErrors, UnknownAxisInsideSpmdListsTheMeshAxes) {
  const Mesh mesh(test::first_devices(8), {{"a", 2}, {"b", 2}, {"c", 2}});
  for (const auto& [name, call] : every_collective()) {
    SCOPED_TRACE(name);
    for (const AxisNames& axes : {AxisNames("model"), AxisNames({"a", "model"})}) {
      EXPECT_THROW(run_spmd(mesh, [&](const Device&) { call(axes); }), DeviceError);
      EXPECT_THAT(test::error_of([&] { run_spmd(mesh, [&](const Device&) { call(axes); }); }),
                  HasSubstr(name + ": unknown axis \"model\"; the mesh has axes (a, b, c)"));
    }
  }
}

TEST(CollectivesErrors, NoAxisOrAnAxisNamedTwice) {
  const Mesh mesh(test::first_devices(4), {{"a", 2}, {"b", 2}});
  EXPECT_THAT(test::error_of([&] { run_spmd(mesh, [](const Device&) { psum(Array::full({1}, 1.0), Axes{}); }); }),
              HasSubstr("psum: no mesh axis named"));
  EXPECT_THAT(test::error_of([&] { run_spmd(mesh, [](const Device&) { axis_size({"a", "b", "a"}); }); }),
              HasSubstr("axis \"a\" is named twice in (a, b, a)"));
}

TEST(CollectivesErrors, OutsideSpmdEachCollectiveSaysSo) {
  for (const auto& [name, call] : every_collective()) {
    SCOPED_TRACE(name);
    EXPECT_THAT(test::error_of([&] { call("data"); }), HasSubstr(name + ": called outside an SPMD function"));
  }
}

TEST(CollectivesErrors, LeadingAxisThatDoesNotSplitOverTheGroup) {
  const Mesh mesh(test::first_devices(6), {{"a", 2}, {"b", 3}});
  auto error_in_spmd = [&](const std::function<void()>& fn) {
    return test::error_of([&] { run_spmd(mesh, [&](const Device&) { fn(); }); });
  };
  EXPECT_THAT(error_in_spmd([] { psum_scatter(Array::full({7}, 1.0), "b", true); }),
              HasSubstr("psum_scatter over axis \"b\": the leading axis of [7] must be divisible by the group size 3"));
  EXPECT_THAT(error_in_spmd([] { psum_scatter(Array::full({4, 2}, 1.0), {"b", "a"}, true); }),
              HasSubstr("psum_scatter over axes (b, a): the leading axis of [4, 2] must be divisible by the group size 6"));
  EXPECT_THAT(error_in_spmd([] { psum_scatter(Array::full({6, 2}, 1.0), "b"); }),
              HasSubstr("psum_scatter over axis \"b\": the leading axis of [6, 2] must equal the group size 3"));
  EXPECT_THAT(error_in_spmd([] { psum_scatter(Array::full({}, 1.0), "b"); }),
              HasSubstr("must equal the group size 3"));
  EXPECT_THAT(error_in_spmd([] { all_to_all(Array::full({7, 2}, 1.0), "b"); }),
              HasSubstr("all_to_all over axis \"b\": the leading axis of [7, 2] must split into 3 equal blocks"));
  EXPECT_THAT(error_in_spmd([] { all_to_all(Array::full({}, 1.0), "b"); }), HasSubstr("must split into 3 equal blocks"));
  EXPECT_THAT(error_in_spmd([] { all_gather(Array::full({}, 1.0), "b", true); }),
              HasSubstr("all_gather over axis \"b\": tiled gathering needs a leading axis; the value is 0-d"));
}

TEST(CollectivesErrors, PpermuteRanksOutOfRangeOrRepeated) {
  const Mesh mesh(test::first_devices(3), {{"data", 3}});
  auto error_of_perm = [&](std::vector<std::pair<int, int>> perm) {
    return test::error_of([&] { run_spmd(mesh, [&](const Device&) { ppermute(Array::full({2}, 1.0), "data", perm); }); });
  };
  EXPECT_THAT(error_of_perm({{0, 3}}), HasSubstr("ppermute over axis \"data\": pair (0, 3) names a rank outside 0..2"));
  EXPECT_THAT(error_of_perm({{-1, 0}}), HasSubstr("pair (-1, 0) names a rank outside 0..2"));
  EXPECT_THAT(error_of_perm({{0, 1}, {0, 2}}), HasSubstr("rank 0 is a source twice"));
  EXPECT_THAT(error_of_perm({{0, 1}, {2, 1}}), HasSubstr("send_to names rank 1 twice"));
}

TEST(CollectivesErrors, InPlaceMeanOfIntegersIsRefused) {
  // pmean of i32 returns a new f64 array; in place there is no room for that, so it is an error.
  const Mesh mesh(test::first_devices(2), {{"data", 2}});
  EXPECT_THAT(test::error_of([&] {
    run_spmd(mesh, [](const Device&) {
      Array x = Array::full({3}, 1.0, DType::i32);
      all_reduce_in_place(x, ReduceOp::mean, "data");
    });
  }), HasSubstr("mean of i32 values is not defined here"));
}

}  // namespace
}  // namespace datarax
