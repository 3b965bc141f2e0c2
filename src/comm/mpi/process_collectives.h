// The MPI backend's process-level collectives (comm/process_collectives.h): one call per process,
// on datarax's own MPI communicator, every wait with the default collective deadline.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace datarax::detail::mpi {

// Every process's bytes, by process index; see comm/process_collectives.h.
std::vector<std::vector<std::byte>> all_gather_across_processes(std::span<const std::byte> mine, std::string_view op);

}  // namespace datarax::detail::mpi
