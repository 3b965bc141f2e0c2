// Internal interface of device, for the parts above it: what this process knows of the job's
// other processes, and the one way the library ends a job.
#pragma once

#include <string>
#include <vector>

#include "datarax/device.h"

namespace datarax::detail {

// Whether any of `devices` belongs to another process than this one.
bool spans_processes(const std::vector<Device>& devices);

// The devices of the job's OTHER processes on this host (MPI's shared-memory split): threads that
// compete for this host's cores with this process's. 0 in a single process.
int other_devices_on_this_host();

// Ends the job: prints "datarax: process P: <message>" to stderr (unless message is empty), then
// ends every process of a multi-process job with `exit_code` (MPI_Abort), or this process alone
// (std::_Exit) otherwise. The library's only way to end a process, for the failures its other
// processes cannot learn of any other way (docs/errors.md lists them).
[[noreturn]] void end_job(int exit_code, const std::string& message);

}  // namespace datarax::detail
