// Device meshes: the seed's "DeviceMeshModule" section, in C++.
//
// A mesh is the devices of a job arranged in an n-dimensional grid with named axes. Everything
// distributed in datarax is said in terms of a mesh: a sharding splits an array over mesh axes, a
// collective runs over mesh axes. DeviceMeshModule builds the three meshes data-parallel training
// needs: one axis of data parallelism, one axis of model parallelism, or both.
//
// Run: ./build/examples/device_mesh   (the output is checked by the CTest test example_device_mesh)
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "datarax/datarax.h"

namespace {

// The example checks what it claims; a wrong claim ends the program with a message and exit 1.
void require(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "device_mesh: FAILED: " << what << "\n";
  std::exit(1);
}

}  // namespace

int main() {
  using datarax::Mesh;
  using datarax::distributed::DeviceMeshModule;
  using datarax::distributed::MeshInfo;

  // --- Devices -----------------------------------------------------------------------------------
  // CPU devices are logical (like XLA's --xla_force_host_platform_device_count): one process can
  // pretend to have 8 devices on any machine, which is how meshes are tried out without a cluster.
  // initialize() must come before anything that uses devices: the first use fixes the device set
  // for the life of the process. A count given here wins; without one it comes from the
  // environment variable DATARAX_NUM_CPU_DEVICES, else from the number of hardware threads.
  datarax::initialize({.num_cpu_devices = 8});
  std::cout << "devices:";
  for (const datarax::Device& device : datarax::devices()) std::cout << " " << device;
  std::cout << "\n";

  // --- The mesh module ---------------------------------------------------------------------------
  // It holds the devices it builds meshes from: by default every device of the job.
  DeviceMeshModule mesh_module;

  // A data-parallel mesh: one axis, "data", over every device. Each device gets a slice of the
  // batch.
  Mesh mesh = mesh_module.create_data_parallel_mesh();

  // A model-parallel mesh: one axis, "model", over the first 4 devices. Each device holds a part of
  // every weight.
  Mesh model_mesh = mesh_module.create_model_parallel_mesh(4);

  // A hybrid mesh: ("data", "model") = (2, 4). Two replicas of the model, each split over 4
  // devices.
  Mesh hybrid_mesh = mesh_module.create_hybrid_mesh(2, 4);

  std::cout << "data-parallel:  " << mesh << "\n";
  std::cout << "model-parallel: " << model_mesh << "\n";
  std::cout << "hybrid:         " << hybrid_mesh << "\n";

  // --- Mesh info ---------------------------------------------------------------------------------
  // get_mesh_info summarizes a mesh: what a training script logs at start-up to show how it runs.
  MeshInfo mesh_info = mesh_module.get_mesh_info(mesh);
  std::cout << "Mesh info: " << mesh_info << "\n";
  MeshInfo hybrid_info = mesh_module.get_mesh_info(hybrid_mesh);
  std::cout << "Hybrid mesh info: " << hybrid_info << "\n";

  require(mesh_info.total_devices == 8 && mesh_info.axis_size("data") == 8,
          "the data-parallel mesh spans 8 devices on axis data");
  require(mesh_module.get_mesh_info(model_mesh).total_devices == 4,
          "the model-parallel mesh spans 4 devices");
  require(hybrid_info.axis_size("data") == 2 && hybrid_info.axis_size("model") == 4,
          "the hybrid mesh is data=2 x model=4");

  // --- How the hybrid mesh is laid out -----------------------------------------------------------
  // Devices are laid out row-major, "data" first: the device at (d, m) is devices()[d * 4 + m]. So
  // the 4 devices of one model replica are neighbours in process order (on a cluster: one host),
  // and model-parallel traffic, the heavier kind, stays inside a host.
  for (int d = 0; d < hybrid_mesh.axis_size("data"); ++d) {
    std::cout << "  data=" << d << ":";
    for (int m = 0; m < hybrid_mesh.axis_size("model"); ++m)
      std::cout << " " << hybrid_mesh.device_at({d, m});
    std::cout << "\n";
  }
  // A collective over an axis runs within the groups of devices that differ only along that axis:
  // an all-reduce of gradients over "data" pairs up the devices that hold the same model part.
  const std::vector<std::vector<datarax::Device>> data_groups = hybrid_mesh.groups({"data"});
  std::cout << "  groups over data:";
  for (const auto& group : data_groups) std::cout << " {" << group[0] << ", " << group[1] << "}";
  std::cout << "\n";
  require(data_groups.size() == 4 && data_groups[1][1] == datarax::devices()[5],
          "the second data group is {cpu:1, cpu:5}");

  // --- Asking for more devices than there are ----------------------------------------------------
  // A module can be given a subset of the devices. Over 4 devices, a 2 x 4 mesh cannot be built:
  // the error says so in the seed's words rather than quietly building a smaller mesh.
  DeviceMeshModule small_module(
      std::vector<datarax::Device>(datarax::devices().begin(), datarax::devices().begin() + 4));
  try {
    small_module.create_hybrid_mesh(2, 4);
    require(false, "create_hybrid_mesh(2, 4) over 4 devices throws");
  } catch (const datarax::NotEnoughDevicesError& e) {
    std::cout << "error: " << e.what() << "\n";
  }

  std::cout << "device_mesh: all checks passed\n";
  return 0;
}
