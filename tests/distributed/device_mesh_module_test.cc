#include "datarax/distributed/device_mesh_module.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/error_of.h"

#include <sstream>

#include "support/test_devices.h"

namespace datarax::distributed {
namespace {

using ::testing::HasSubstr;

using test::error_of;

TEST(DeviceMeshModule, DefaultUsesAllDevices) {
  test::first_devices(8);
  DeviceMeshModule m;
  EXPECT_EQ(m.devices().size(), 8u);
  const Mesh mesh = m.create_data_parallel_mesh();
  EXPECT_EQ(mesh.axis_names(), std::vector<std::string>{"data"});
  EXPECT_EQ(mesh.size(), 8);
  EXPECT_EQ(mesh.devices(), datarax::devices());
}

TEST(DeviceMeshModule, SweepOneToEightDevices) {
  for (int n = 1; n <= 8; ++n) {
    const auto devs = test::first_devices(n);
    DeviceMeshModule m(devs);
    SCOPED_TRACE(n);
    for (int k = 1; k <= n; ++k) {
      const Mesh dp = m.create_data_parallel_mesh(k);
      EXPECT_EQ(dp.axes(), (std::vector<MeshAxis>{{"data", k}}));
      EXPECT_EQ(dp.devices(), std::vector<Device>(devs.begin(), devs.begin() + k));
      const Mesh mp = m.create_model_parallel_mesh(k);
      EXPECT_EQ(mp.axes(), (std::vector<MeshAxis>{{"model", k}}));
    }
    EXPECT_EQ(m.create_data_parallel_mesh().size(), n);
    EXPECT_EQ(m.create_model_parallel_mesh().size(), n);
    for (int dp = 1; dp <= n; ++dp)
      for (int mp = 1; dp * mp <= n; ++mp) {
        const Mesh h = m.create_hybrid_mesh(dp, mp);
        EXPECT_EQ(h.axes(), (std::vector<MeshAxis>{{"data", dp}, {"model", mp}}));
        // Row-major over process-ordered devices: (d, m) is device d * mp + m.
        for (int d = 0; d < dp; ++d)
          for (int j = 0; j < mp; ++j)
            EXPECT_EQ(h.device_at({d, j}), devs[static_cast<std::size_t>(d * mp + j)]);
      }
    const Mesh three = m.create_device_mesh({{"a", 1}, {"b", n}, {"c", 1}});
    EXPECT_EQ(three.shape(), (std::vector<int>{1, n, 1}));
  }
}

TEST(DeviceMeshModule, HybridKeepsEachProcessContiguousAlongModel) {
  // Two processes with four devices each, listed interleaved: the hybrid mesh reorders by process.
  std::vector<Device> devs;
  for (int i = 0; i < 4; ++i) {
    devs.push_back(Device{DeviceKind::cpu, i, 0, i});
    devs.push_back(Device{DeviceKind::cpu, 4 + i, 1, i});
  }
  DeviceMeshModule m(devs);
  const Mesh h = m.create_hybrid_mesh(2, 4);
  for (const auto& group : h.groups({"model"}))
    for (const Device& d : group) EXPECT_EQ(d.process_index, group[0].process_index);
  for (const auto& group : h.groups({"data"})) EXPECT_NE(group[0].process_index, group[1].process_index);
  const MeshInfo info = m.get_mesh_info(h);
  EXPECT_EQ(info.process_count, 2);
  EXPECT_EQ(info.devices_per_process, 4);
}

TEST(DeviceMeshModule, NotEnoughDevicesMessagesAreExact) {
  DeviceMeshModule m(test::first_devices(8));
  EXPECT_EQ(error_of([&] { m.create_data_parallel_mesh(16); }),
            "Not enough devices. Data parallelism requires 16 devices, but only 8 are available.");
  EXPECT_EQ(error_of([&] { m.create_model_parallel_mesh(9); }),
            "Not enough devices. Model parallelism requires 9 devices, but only 8 are available.");
  EXPECT_EQ(error_of([&] { m.create_device_mesh({{"a", 3}, {"b", 3}}); }),
            "Not enough devices. Mesh requires 9 devices, but only 8 are available.");
  DeviceMeshModule four(test::first_devices(4));
  EXPECT_EQ(error_of([&] { four.create_hybrid_mesh(2, 4); }),
            "Not enough devices. Hybrid parallelism requires 8 devices, but only 4 are available.");
  EXPECT_THROW(four.create_hybrid_mesh(2, 4), NotEnoughDevicesError);
}

TEST(DeviceMeshModule, BadSizesAndNames) {
  DeviceMeshModule m(test::first_devices(8));
  EXPECT_THAT(error_of([&] { m.create_data_parallel_mesh(0); }), HasSubstr("axis \"data\" has size 0; sizes must be >= 1"));
  EXPECT_THAT(error_of([&] { m.create_model_parallel_mesh(-1); }), HasSubstr("has size -1"));
  EXPECT_THAT(error_of([&] { m.create_hybrid_mesh(0, 4); }), HasSubstr("has size 0"));
  EXPECT_THAT(error_of([&] { m.create_device_mesh({{"a", 2}, {"a", 2}}); }), HasSubstr("\"a\" is used twice"));
  EXPECT_THAT(error_of([&] { m.create_device_mesh({{"", 2}}); }), HasSubstr("must not be empty"));
  EXPECT_THAT(error_of([&] { m.create_device_mesh({}); }), HasSubstr("at least one axis"));
  EXPECT_THAT(error_of([] { DeviceMeshModule(std::vector<Device>{}); }), HasSubstr("device list is empty"));
  const auto d = test::first_devices(2);
  EXPECT_THAT(error_of([&] { DeviceMeshModule({d[1], d[1]}); }), HasSubstr("cpu:1 is listed twice"));
}

TEST(DeviceMeshModule, MeshInfo) {
  DeviceMeshModule m(test::first_devices(8));
  const MeshInfo info = m.get_mesh_info(m.create_hybrid_mesh(2, 4));
  EXPECT_EQ(info.total_devices, 8);
  EXPECT_EQ(info.axes, (std::vector<MeshAxis>{{"data", 2}, {"model", 4}}));
  EXPECT_EQ(info.axis_size("model"), 4);
  EXPECT_EQ(info.device_kinds, std::vector<std::string>{"cpu"});
  EXPECT_EQ(info.process_count, 1);
  EXPECT_EQ(info.devices_per_process, 8);
  std::ostringstream os;
  os << info;
  EXPECT_EQ(os.str(),
            "MeshInfo(total_devices=8, axes={data=2, model=4}, device_kinds={cpu}, process_count=1, "
            "devices_per_process=8)");
  EXPECT_THAT(error_of([&] { info.axis_size("pipe"); }), HasSubstr("unknown axis \"pipe\"; the mesh has axes (data, model)"));
}

}  // namespace
}  // namespace datarax::distributed
