// Internal interface of comm, for the SPMD runtime: the one place that picks a backend.
//
// The runtime asks for a group of devices and gets a GroupCommunicator per member in this process;
// it never learns which backend serves the group. A group inside this process runs on the threads
// backend; one that spans processes on the MPI backend (hierarchical over threads). Adding a
// backend is a folder under src/comm/ implementing group_communicator.h and one line in
// backends.cc (docs/architecture.md walks through NCCL's).
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "comm/group_communicator.h"

namespace datarax::detail {

// The communicators of one group's members in this process.
class Group {
 public:
  virtual ~Group() = default;
  // The communicator of `device`, a member of the group in this process (InvalidArgumentError
  // otherwise). Owned by the group; one per member thread.
  virtual GroupCommunicator& communicator(const Device& device) = 0;
};

// A group of `devices` (by rank; at least one in this process), from the first backend that
// takes them. `name` describes it in messages ("axis \"data\""); `key` names it uniquely in the
// job, the same text on every process. Waits time out after `timeout` until set_timeout.
// Throws Error when no backend of this build takes the devices.
std::unique_ptr<Group> make_group(const std::vector<Device>& devices, const std::string& name,
                                  const std::string& key, std::chrono::milliseconds timeout);

// After a device of this process failed in code whose collectives span processes: whether every
// other process learns of `failure` by itself (a mismatch that a cross-process group found on
// every process, with this process's messages still in step). When not, the caller must end the
// job, or the other processes would wait for this one until their deadline.
bool every_process_knows(const std::exception_ptr& failure);

}  // namespace datarax::detail
