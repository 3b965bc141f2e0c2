// Internal interface of comm, for sharding (and the parts above): collectives between the job's
// processes, called by one thread per process outside SPMD code — what ShardedArray::gather needs
// to assemble an array whose shards live in several processes.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace datarax::detail {

// Every process's `mine`, by process index (sizes may differ). Collective: every process of the
// job calls it, in the same order as its other process-level calls. A single process gets its
// own bytes back. `op` names the caller in messages. A process that does not come within the
// default collective deadline (default_collective_timeout) ends the job, naming `op`.
std::vector<std::vector<std::byte>> all_gather_across_processes(std::span<const std::byte> mine, std::string_view op);

}  // namespace datarax::detail
