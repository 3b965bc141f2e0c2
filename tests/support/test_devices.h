// Devices for tests: the process is initialized with 8 logical CPU devices, and a test takes the
// first n it needs.
#pragma once

#include <vector>

#include "datarax/device_discovery.h"

namespace datarax::test {

inline constexpr int kTestDevices = 8;

inline std::vector<Device> first_devices(int n) {
  initialize({.num_cpu_devices = kTestDevices});
  return {devices().begin(), devices().begin() + n};
}

}  // namespace datarax::test
