#include "datarax/spmd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "datarax/collectives.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;

TEST(RunSpmd, RunsOncePerDeviceOnItsOwnThreadNotTheCallers) {
  const Mesh mesh(test::first_devices(8), {{"data", 8}});
  std::mutex mu;
  std::set<int> ids;
  std::set<std::thread::id> threads;
  const auto caller = std::this_thread::get_id();
  run_spmd(mesh, [&](const Device& d) {
    EXPECT_TRUE(in_spmd());
    EXPECT_EQ(current_device(), d);
    EXPECT_EQ(current_mesh(), mesh);
    std::lock_guard lock(mu);
    ids.insert(d.id);
    threads.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_EQ(threads.size(), 8u);
  EXPECT_EQ(threads.count(caller), 0u);
  EXPECT_FALSE(in_spmd());
  // Workers persist: a second launch uses the same threads.
  std::set<std::thread::id> again;
  run_spmd(mesh, [&](const Device&) {
    std::lock_guard lock(mu);
    again.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(again, threads);
}

TEST(RunSpmd, CollectivesOverEachAxisOfA3dMesh) {
  const Mesh mesh(test::first_devices(8), {{"a", 2}, {"b", 2}, {"c", 2}});
  std::vector<float> sum_b(8), sum_ac(8);
  std::vector<int> idx_ac(8), size_ac(8);
  run_spmd(mesh, [&](const Device& d) {
    const Array x = Array::full({3}, d.id);
    sum_b[static_cast<std::size_t>(d.id)] = psum(x, "b").data<float>()[2];
    sum_ac[static_cast<std::size_t>(d.id)] = psum(x, {"a", "c"}).data<float>()[0];
    idx_ac[static_cast<std::size_t>(d.id)] = axis_index({"a", "c"});
    size_ac[static_cast<std::size_t>(d.id)] = axis_size({"a", "c"});
  });
  for (int id = 0; id < 8; ++id) {
    const int a = id / 4, b = (id / 2) % 2, c = id % 2;
    // Reference from coordinates: the group over b holds ids a*4 + {0,1}*2 + c.
    EXPECT_EQ(sum_b[static_cast<std::size_t>(id)], static_cast<float>((a * 4 + c) * 2 + 2)) << id;
    EXPECT_EQ(sum_ac[static_cast<std::size_t>(id)], static_cast<float>(4 * (b * 2) + (0 + 4) * 2 + (0 + 1) * 2)) << id;
    EXPECT_EQ(idx_ac[static_cast<std::size_t>(id)], a * 2 + c);
    EXPECT_EQ(size_ac[static_cast<std::size_t>(id)], 4);
  }
}

// The others are released by the abort, not by their deadline (60 s, which the test would not
// outlive): each of them saw the abort.
TEST(RunSpmd, ADeviceThatThrowsReleasesTheOthersAndIsNamed) {
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  std::vector<std::string> seen(4);
  try {
    run_spmd(mesh, [&](const Device& d) {
      if (d.id == 2) throw std::runtime_error("bad batch");
      seen[static_cast<std::size_t>(d.id)] = test::error_of([] { psum(Array::full({4}, 1.0), "data"); });
    }, {.timeout = std::chrono::seconds(60)});
    FAIL() << "no error";
  } catch (const DeviceError& e) {
    EXPECT_EQ(e.device().id, 2);
    EXPECT_STREQ(e.what(), "device cpu:2: bad batch");
    EXPECT_THROW(std::rethrow_exception(e.original()), std::runtime_error);
  }
  for (int id : {0, 1, 3})
    EXPECT_THAT(seen[static_cast<std::size_t>(id)], HasSubstr("psum over axis \"data\": aborted because device cpu:2 failed"));
  // The groups are usable again afterwards.
  std::vector<float> out(4);
  run_spmd(mesh, [&](const Device& d) { out[static_cast<std::size_t>(d.id)] = psum(Array::full({1}, 1.0), "data").item<float>(); });
  EXPECT_EQ(out, std::vector<float>(4, 4.0f));
}

// cpu:1 never comes: it returns once another device has timed out.
TEST(RunSpmd, TimeoutNamesTheMissingDevice) {
  const Mesh mesh(test::first_devices(3), {{"data", 3}});
  std::atomic<int> gave_up{0};
  const std::string msg = test::error_of([&] {
    run_spmd(mesh, [&](const Device& d) {
      if (d.id == 1) {
        while (gave_up.load() == 0) std::this_thread::yield();
        return;
      }
      try {
        psum(Array::full({4}, 1.0), "data");
      } catch (...) {
        gave_up.fetch_add(1);
        throw;
      }
    }, {.timeout = std::chrono::seconds(1)});
  });
  EXPECT_THAT(msg, HasSubstr("psum over axis \"data\": timed out after 1 s"));
  EXPECT_THAT(msg, HasSubstr("missing: cpu:1"));
}

TEST(RunSpmd, MisuseIsReportedClearly) {
  EXPECT_THAT(test::error_of([] { psum(Array::full({1}, 1.0), "data"); }),
              HasSubstr("psum: called outside an SPMD function"));
  EXPECT_THAT(test::error_of([] { current_device(); }), HasSubstr("current_device: called outside"));
  const Mesh mesh(test::first_devices(2), {{"data", 2}});
  EXPECT_THAT(test::error_of([&] { run_spmd(mesh, [](const Device&) { psum(Array::full({1}, 1.0), "model"); }); }),
              HasSubstr("psum: unknown axis \"model\"; the mesh has axes (data)"));
  EXPECT_THAT(test::error_of([&] { run_spmd(mesh, [&](const Device&) { run_spmd(mesh, [](const Device&) {}); }); }),
              HasSubstr("SPMD functions do not nest"));
}

TEST(RunSpmd, MismatchedShapesAcrossDevicesFailEverywhere) {
  const Mesh mesh(test::first_devices(2), {{"data", 2}});
  EXPECT_THAT(test::error_of([&] {
    run_spmd(mesh, [](const Device& d) { psum(Array::full({d.id == 0 ? 3 : 4}, 1.0), "data"); });
  }), HasSubstr("cpu:0 called all_reduce(sum, f32[3]) but cpu:1 called all_reduce(sum, f32[4])"));
}

// The Tree forms apply the Array forms leaf by leaf; the *_into forms write into caller buffers.
TEST(RunSpmd, TreeAndIntoFormsOfTheCollectives) {
  const Mesh mesh(test::first_devices(3), {{"data", 3}});
  std::vector<std::string> failures;
  std::mutex mu;
  run_spmd(mesh, [&](const Device& d) {
    const int r = d.id;
    // Leaf a: [3, 2] with a[i][j] = 10r + 2i + j; leaf b: [6] with b[k] = r * k.
    Array a = Array::empty({3, 2});
    for (int i = 0; i < 6; ++i) a.data<float>()[static_cast<std::size_t>(i)] = static_cast<float>(10 * r + i);
    Array b = Array::empty({6}, DType::i32);
    for (int k = 0; k < 6; ++k) b.data<std::int32_t>()[static_cast<std::size_t>(k)] = r * k;
    const Tree t{{"a", a}, {"b", b}};
    auto check = [&](bool ok, const std::string& what) {
      if (ok) return;
      std::lock_guard lock(mu);
      failures.push_back(d.to_string() + ": " + what);
    };
    const Tree scattered = psum_scatter(t, "data", true);
    check(bitwise_equal(scattered.at("a"), psum_scatter(a, "data", true)), "psum_scatter(Tree) leaf a");
    check(bitwise_equal(scattered.at("b"), psum_scatter(b, "data", true)), "psum_scatter(Tree) leaf b");
    const std::vector<std::pair<int, int>> ring{{0, 1}, {1, 2}, {2, 0}};
    const Tree permuted = ppermute(t, "data", ring);
    check(bitwise_equal(permuted.at("a"), ppermute(a, "data", ring)), "ppermute(Tree)");
    const Tree exchanged = all_to_all(t, "data");
    check(bitwise_equal(exchanged.at("b"), all_to_all(b, "data")), "all_to_all(Tree)");
    // reduce_scatter_into: block r of the sum of b over the 3 devices, b[k] summed = 3k.
    Array slice = Array::empty({2}, DType::i32);
    reduce_scatter_into(b, slice, ReduceOp::sum, "data");
    check(slice.data<std::int32_t>()[0] == 3 * (2 * r) && slice.data<std::int32_t>()[1] == 3 * (2 * r + 1),
          "reduce_scatter_into");
    // all_gather_into, in place: each device's block r of `whole` is its own input.
    Array whole = Array::full({6}, -1, DType::i32);
    whole.data<std::int32_t>()[static_cast<std::size_t>(2 * r)] = 100 + r;
    whole.data<std::int32_t>()[static_cast<std::size_t>(2 * r + 1)] = 200 + r;
    all_gather_into(whole.slice(2 * r, 2 * r + 2), whole, "data");
    for (int k = 0; k < 3; ++k)
      check(whole.data<std::int32_t>()[static_cast<std::size_t>(2 * k)] == 100 + k &&
                whole.data<std::int32_t>()[static_cast<std::size_t>(2 * k + 1)] == 200 + k,
            "all_gather_into in place, block " + std::to_string(k));
  });
  EXPECT_TRUE(failures.empty()) << testing::PrintToString(failures);
}

TEST(RunSpmd, MismatchedAxesFailPromptlyNamingBothSides) {
  // cpu:0 reduces over "data" while cpu:1 reduces over "model": each waits in a group the other
  // never joins. Without detection this would last until the (here 60 s) timeout and say so.
  const Mesh mesh(test::first_devices(4), {{"data", 2}, {"model", 2}});
  const std::string msg = test::error_of([&] {
    run_spmd(mesh, [](const Device& d) {
      if (d.id == 1) psum(Array::full({4}, 1.0), "model");
      else psum(Array::full({4}, 1.0), "data");
    }, {.timeout = std::chrono::seconds(60)});
  });
  EXPECT_THAT(msg, HasSubstr("mismatched collectives"));
  EXPECT_THAT(msg, HasSubstr("psum over axis \"data\""));
  EXPECT_THAT(msg, HasSubstr("is waiting in psum over axis \"model\""));
}

}  // namespace
}  // namespace datarax
