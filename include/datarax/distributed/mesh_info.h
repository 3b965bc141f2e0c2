// MeshInfo: a summary of a mesh, as DeviceMeshModule::get_mesh_info returns it.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "datarax/mesh.h"

namespace datarax::distributed {

struct MeshInfo {
  int total_devices = 0;
  std::vector<MeshAxis> axes;             // (name, size) in mesh order
  std::vector<std::string> device_kinds;  // distinct kinds, e.g. {"cpu"}
  int process_count = 0;                  // processes owning the mesh's devices
  int devices_per_process = 0;            // the most devices any one process holds in the mesh

  // Size of a named axis; InvalidArgumentError listing the axes for an unknown name.
  int axis_size(const std::string& name) const;
  friend bool operator==(const MeshInfo&, const MeshInfo&) = default;
};

// "MeshInfo(total_devices=8, axes={data=2, model=4}, device_kinds={cpu}, process_count=1,
// devices_per_process=8)"
std::ostream& operator<<(std::ostream& os, const MeshInfo& info);
std::string to_string(const MeshInfo& info);

}  // namespace datarax::distributed
