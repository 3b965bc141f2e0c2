#include "datarax/device.h"

#include <string>

namespace datarax {

std::string_view to_string(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::cpu: return "cpu";
    case DeviceKind::cuda: return "cuda";
  }
  return "invalid";
}

std::string Device::to_string() const {
  return std::string(datarax::to_string(kind)) + ":" + std::to_string(id);
}

std::ostream& operator<<(std::ostream& os, const Device& device) {
  return os << device.to_string();
}

}  // namespace datarax
