// DeviceMeshModule: creates device meshes (the seed's module of that name).
//
//   DeviceMeshModule mesh_module;                          // all devices of the job
//   Mesh mesh = mesh_module.create_data_parallel_mesh();   // ("data")
//   Mesh model = mesh_module.create_model_parallel_mesh(4);
//   Mesh hybrid = mesh_module.create_hybrid_mesh(2, 4);    // ("data", "model")
//   std::cout << mesh_module.get_mesh_info(hybrid);
//
// A request for more devices than the module has throws NotEnoughDevicesError, worded
// "Not enough devices. Hybrid parallelism requires 8 devices, but only 4 are available."
// A smaller request uses the first devices, in process order.
#pragma once

#include <optional>
#include <vector>

#include "datarax/distributed/mesh_info.h"
#include "datarax/mesh.h"

namespace datarax::distributed {

class DeviceMeshModule {
 public:
  // Uses every device of the job (datarax::devices()). Like every first use of devices, this
  // initializes the runtime with default options if initialize() was not called before.
  DeviceMeshModule();
  // Uses exactly these devices, in this order (at least one; none listed twice).
  explicit DeviceMeshModule(std::vector<Device> devices);

  const std::vector<Device>& devices() const { return devices_; }

  // A mesh with these axes, in this order, over the first product-of-sizes devices.
  Mesh create_device_mesh(const std::vector<MeshAxis>& axes) const;
  // 1-D mesh, axis "data", over all devices or the first `num_devices`.
  Mesh create_data_parallel_mesh(std::optional<int> num_devices = {}) const;
  // 1-D mesh, axis "model", over all devices or the first `num_devices`.
  Mesh create_model_parallel_mesh(std::optional<int> num_devices = {}) const;
  // 2-D mesh ("data", "model"), data first. Devices are taken in process order and laid out
  // row-major, so each process's devices are contiguous along "model": model-parallel collectives
  // stay inside a process (a host) where the sizes allow, data-parallel ones cross processes.
  Mesh create_hybrid_mesh(int data_parallel_size, int model_parallel_size) const;

  MeshInfo get_mesh_info(const Mesh& mesh) const;

 private:
  Mesh build(const char* what, const std::vector<MeshAxis>& axes) const;

  std::vector<Device> devices_;
};

}  // namespace datarax::distributed
