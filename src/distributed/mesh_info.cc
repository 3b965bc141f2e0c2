#include "datarax/distributed/mesh_info.h"

#include <sstream>

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax::distributed {

int MeshInfo::axis_size(const std::string& name) const {
  for (const auto& [axis, size] : axes)
    if (axis == name) return size;
  throw InvalidArgumentError(
      "MeshInfo::axis_size: unknown axis " + detail::quoted(name) + "; the mesh has axes (" +
      detail::join(axes, ", ", [](const MeshAxis& a) { return a.first; }) + ")");
}

std::string to_string(const MeshInfo& info) {
  std::ostringstream os;
  os << "MeshInfo(total_devices=" << info.total_devices << ", axes={"
     << detail::join(info.axes, ", ",
                     [](const MeshAxis& a) { return a.first + "=" + std::to_string(a.second); })
     << "}, device_kinds={" << detail::join(info.device_kinds, ", ")
     << "}, process_count=" << info.process_count
     << ", devices_per_process=" << info.devices_per_process << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const MeshInfo& info) { return os << to_string(info); }

}  // namespace datarax::distributed
