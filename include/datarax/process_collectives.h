// Collectives between the job's processes, called by one thread of each process outside SPMD code
// (JAX's multihost_utils.process_allgather): how processes agree on host-side facts — whether a
// file was saved, whether their settings match — and how ShardedArray::gather assembles an
// array whose shards live in several processes.
//
// Every process of the job calls each, in the same order as its other process-level calls. In a
// single process they return this process's value alone. A process that does not come within the
// default collective deadline (default_collective_timeout) ends the job, naming `op`
// (docs/errors.md).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace datarax {

// Every process's bytes (their sizes may differ), by process index. `op` names the caller.
std::vector<std::vector<std::byte>> process_all_gather(std::span<const std::byte> mine, std::string_view op);

// Every process's text, by process index.
std::vector<std::string> process_all_gather(const std::string& mine, std::string_view op);

}  // namespace datarax
