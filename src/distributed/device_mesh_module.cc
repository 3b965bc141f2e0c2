#include "datarax/distributed/device_mesh_module.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/strings.h"
#include "datarax/error.h"
#include "datarax/device_discovery.h"

namespace datarax::distributed {

namespace {

// Validates the sizes; InvalidArgumentError naming `op` and the bad axis.
void check_sizes(const char* op, const std::vector<MeshAxis>& axes) {
  for (const auto& [name, size] : axes)
    if (size < 1)
      throw InvalidArgumentError(std::string(op) + ": axis " + detail::quoted(name) + " has size " +
                                 std::to_string(size) + "; sizes must be >= 1");
}

}  // namespace

DeviceMeshModule::DeviceMeshModule() : devices_(datarax::devices()) {}

DeviceMeshModule::DeviceMeshModule(std::vector<Device> devices) : devices_(std::move(devices)) {
  if (devices_.empty())
    throw InvalidArgumentError("DeviceMeshModule: the device list is empty; give at least one device");
  std::set<Device> seen;
  for (const Device& d : devices_)
    if (!seen.insert(d).second)
      throw InvalidArgumentError("DeviceMeshModule: device " + d.to_string() +
                                 " is listed twice; each device may appear once");
}

Mesh DeviceMeshModule::build(const char* what, const std::vector<MeshAxis>& axes) const {
  check_sizes(what, axes);
  const long long needed = devices_needed(axes);
  const auto available = static_cast<long long>(devices_.size());
  if (needed > available)
    throw NotEnoughDevicesError("Not enough devices. " + std::string(what) + " requires " +
                                devices_needed_text(axes) + " devices, but only " +
                                std::to_string(available) + " are available.");
  return Mesh(std::vector<Device>(devices_.begin(), devices_.begin() + needed), axes);
}

Mesh DeviceMeshModule::create_device_mesh(const std::vector<MeshAxis>& axes) const {
  if (axes.empty()) throw InvalidArgumentError("create_device_mesh: at least one axis is required");
  return build("Mesh", axes);
}

Mesh DeviceMeshModule::create_data_parallel_mesh(std::optional<int> num_devices) const {
  return build("Data parallelism",
               {{"data", num_devices.value_or(static_cast<int>(devices_.size()))}});
}

Mesh DeviceMeshModule::create_model_parallel_mesh(std::optional<int> num_devices) const {
  return build("Model parallelism",
               {{"model", num_devices.value_or(static_cast<int>(devices_.size()))}});
}

Mesh DeviceMeshModule::create_hybrid_mesh(int data_parallel_size, int model_parallel_size) const {
  // Process order (then local order) makes each process's devices contiguous along "model".
  std::vector<Device> ordered = devices_;
  std::stable_sort(ordered.begin(), ordered.end(), [](const Device& a, const Device& b) {
    return std::pair(a.process_index, a.local_index) < std::pair(b.process_index, b.local_index);
  });
  return DeviceMeshModule(std::move(ordered))
      .build("Hybrid parallelism", {{"data", data_parallel_size}, {"model", model_parallel_size}});
}

MeshInfo DeviceMeshModule::get_mesh_info(const Mesh& mesh) const {
  MeshInfo info;
  info.total_devices = mesh.size();
  info.axes = mesh.axes();
  std::map<int, int> per_process;
  for (const Device& d : mesh.devices()) {
    const std::string kind(to_string(d.kind));
    if (std::find(info.device_kinds.begin(), info.device_kinds.end(), kind) == info.device_kinds.end())
      info.device_kinds.push_back(kind);
    ++per_process[d.process_index];
  }
  info.process_count = static_cast<int>(per_process.size());
  for (const auto& [process, count] : per_process)
    info.devices_per_process = std::max(info.devices_per_process, count);
  return info;
}

}  // namespace datarax::distributed
