// datarax::communicator(axes): the current device's Communicator over mesh axes, for collectives on
// the caller's own typed buffers; and the process-wide CollectiveObserver that sees every
// collective a device starts.
#include "datarax/communicator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "datarax/collectives.h"
#include "datarax/spmd.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;

// Over each axis of a 2 x 3 mesh: the communicator's rank and size are the axis index and size,
// and an all_reduce of a std::vector gives the sum of the group's values (from a formula).
TEST(Communicator, TypedSpansOverEachAxisOfA2x3Mesh) {
  const Mesh mesh(test::first_devices(6), {{"data", 2}, {"model", 3}});
  std::vector<std::vector<double>> got(6);
  std::vector<int> ranks(6), sizes(6), expect_ranks(6), expect_sizes(6);
  run_spmd(mesh, [&](const Device& d) {
    const auto i = static_cast<std::size_t>(d.id);
    Communicator& model = communicator("model");
    ranks[i] = model.rank();
    sizes[i] = model.size();
    expect_ranks[i] = axis_index("model");
    expect_sizes[i] = axis_size("model");
    std::vector<double> v = {static_cast<double>(d.id), 1.0};
    model.all_reduce(std::span<double>(v), ReduceOp::sum);
    got[i] = v;
  });
  for (int id = 0; id < 6; ++id) {
    const int row = id / 3;  // the model group of id: ids row*3 .. row*3+2
    const double sum = 3 * row * 3 + 0 + 1 + 2;
    EXPECT_EQ(got[static_cast<std::size_t>(id)], (std::vector<double>{sum, 3.0})) << id;
    EXPECT_EQ(ranks[static_cast<std::size_t>(id)], expect_ranks[static_cast<std::size_t>(id)]);
    EXPECT_EQ(sizes[static_cast<std::size_t>(id)], 3);
    EXPECT_EQ(expect_sizes[static_cast<std::size_t>(id)], 3);
  }
}

TEST(Communicator, OnlyInsideSpmdAndOnlyOverTheMeshsAxes) {
  EXPECT_THAT(test::error_of([] { communicator("data"); }), HasSubstr("communicator: called outside an SPMD function"));
  const Mesh mesh(test::first_devices(2), {{"data", 2}});
  std::vector<std::string> errors(2);
  run_spmd(mesh, [&](const Device& d) {
    errors[static_cast<std::size_t>(d.id)] = test::error_of([] { communicator("model"); });
  });
  for (const std::string& e : errors) EXPECT_THAT(e, HasSubstr("communicator: unknown axis \"model\"; the mesh has axes (data)"));
}

// Records every collective: who called what.
class Recorder final : public CollectiveObserver {
 public:
  void on_collective(const Communicator& comm, const CollectiveDesc& desc) override {
    std::lock_guard lock(mu);
    calls.push_back({comm.devices()[static_cast<std::size_t>(comm.rank())], desc.kind, desc.dtype, desc.count,
                     std::string(desc.label)});
  }
  struct Call {
    Device device;
    CollectiveKind kind;
    DType dtype;
    std::int64_t count;
    std::string label;
  };
  std::mutex mu;
  std::vector<Call> calls;
};

TEST(CollectiveObserver, SeesEveryCollectiveOfEveryDeviceOnce) {
  const Mesh mesh(test::first_devices(4), {{"data", 4}});
  Recorder recorder;
  EXPECT_EQ(set_collective_observer(&recorder), nullptr);
  run_spmd(mesh, [&](const Device&) {
    psum(Array::zeros({5}, DType::f32), "data");
    all_gather(Array::zeros({2}, DType::i32), "data");
    std::vector<float> v(3);
    communicator("data").broadcast(std::span<float>(v), 0);
  });
  EXPECT_EQ(set_collective_observer(nullptr), &recorder);
  run_spmd(mesh, [&](const Device&) { psum(Array::zeros({1}), "data"); });  // not seen: removed
  ASSERT_EQ(recorder.calls.size(), 12u);
  for (int id = 0; id < 4; ++id) {
    std::vector<Recorder::Call> mine;
    for (const auto& c : recorder.calls)
      if (c.device.id == id) mine.push_back(c);
    ASSERT_EQ(mine.size(), 3u) << id;
    EXPECT_EQ(mine[0].kind, CollectiveKind::all_reduce);
    EXPECT_EQ(mine[0].dtype, DType::f32);
    EXPECT_EQ(mine[0].count, 5);
    EXPECT_EQ(mine[0].label, "psum over axis \"data\"");
    EXPECT_EQ(mine[1].kind, CollectiveKind::all_gather);
    EXPECT_EQ(mine[1].count, 2);
    EXPECT_EQ(mine[2].kind, CollectiveKind::broadcast);
    EXPECT_EQ(mine[2].label, "broadcast");
  }
}

// Arguments that fail their checks never reach the observer: it sees what runs.
TEST(CollectiveObserver, DoesNotSeeCallsRejectedByTheirChecks) {
  const Mesh mesh(test::first_devices(2), {{"data", 2}});
  Recorder recorder;
  set_collective_observer(&recorder);
  run_spmd(mesh, [&](const Device&) {
    std::vector<float> in(3), out(2);
    EXPECT_THROW(communicator("data").all_reduce(std::span<const float>(in), std::span<float>(out), ReduceOp::sum),
                 InvalidArgumentError);
  });
  set_collective_observer(nullptr);
  EXPECT_TRUE(recorder.calls.empty());
}

}  // namespace
}  // namespace datarax
