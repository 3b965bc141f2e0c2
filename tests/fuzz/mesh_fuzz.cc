// libFuzzer target: the tools' --mesh and --hybrid arguments, parsed and turned into a mesh of 8
// devices (DeviceMeshModule), on arbitrary text.
#include <string>

#include "cli_parse.h"
#include "datarax/distributed/device_mesh_module.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<datarax::Device> devices = [] {
    std::vector<datarax::Device> d;
    for (int i = 0; i < 8; ++i) d.push_back({datarax::DeviceKind::cpu, i, 0, i});
    return d;
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const datarax::distributed::DeviceMeshModule module(devices);
  datarax::fuzz::expect_errors_only([&] {
    const datarax::Mesh mesh = module.create_device_mesh(datarax::tools::parse_mesh_axes(text, "--mesh"));
    module.get_mesh_info(mesh);
  });
  return datarax::fuzz::expect_errors_only([&] {
    const auto [dp, mp] = datarax::tools::parse_hybrid(text, "--hybrid");
    module.create_hybrid_mesh(dp, mp);
  });
}
