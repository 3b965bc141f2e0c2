// Process-level exchange for the parts below the SPMD runtime (sharding's cross-process gather):
// every process's bytes to every process. Collective over every process of the job.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "datarax/device.h"

namespace datarax::detail {

// Whether any of `devices` belongs to another process than this one (a mesh that spans processes).
bool spans_processes(const std::vector<Device>& devices);

// The devices of the job's OTHER processes on this host (MPI's shared-memory split): threads that
// compete for this host's cores with this process's. 0 in a single process.
int other_devices_on_this_host();

// Every process's `mine`, by process index. Every process must call it, in the same order as its
// other process-level calls. A single process gets its own bytes back. A process that does not
// come within the default collective deadline ends the job, named, with `op` in the message.
std::vector<std::vector<std::byte>> all_gather_from_processes(std::span<const std::byte> mine, std::string_view op);

}  // namespace datarax::detail
