// Device: one compute device the library can place data on and run SPMD code on.
//
// CPU devices are logical, like XLA's host platform device count: one process can expose 1..1024
// of them whatever its core count; each gets a worker thread when SPMD code runs. CUDA devices are
// physical GPUs.
#pragma once

#include <compare>
#include <ostream>
#include <string>
#include <string_view>

namespace datarax {

enum class DeviceKind : unsigned char { cpu, cuda };

std::string_view to_string(DeviceKind kind);  // "cpu", "cuda"

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int id = 0;             // global: unique across all processes of the job
  int process_index = 0;  // the process that owns it
  int local_index = 0;    // its index among its process's devices

  // "cpu:3": kind and global id.
  std::string to_string() const;

  friend bool operator==(const Device&, const Device&) = default;
  friend auto operator<=>(const Device&, const Device&) = default;
};

std::ostream& operator<<(std::ostream& os, const Device& device);

}  // namespace datarax
