// Device discovery: which devices the job has, which are this process's, which process this is.
//
// A process started by an MPI launcher (mpirun/mpiexec of Open MPI or MPICH, srun with PMI; see
// docs/multi_host.md) joins the MPI job in initialize(): devices() is then every process's devices
// in process order, process_index()/process_count() come from MPI, and MPI is finalized at exit.
// Otherwise the process is the whole job (process 0 of 1) and never calls MPI.
//
// initialize() sets this up once per process. Every other call that needs devices initializes with
// default options on first use, so calling initialize() is only needed to choose options. Once set
// up, initialize() without a device count, or with the count in force, is a no-op; with another
// count it throws, because devices, meshes and worker threads built from the first set-up would
// silently disagree with the second.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "datarax/device.h"

namespace datarax {

inline constexpr int kMaxCpuDevices = 1024;

struct InitOptions {
  // Logical CPU devices in this process: 1..kMaxCpuDevices. Unset: the environment variable
  // DATARAX_NUM_CPU_DEVICES, else the number of hardware threads.
  std::optional<int> num_cpu_devices;
};

// Sets up the devices of this process. Throws InvalidArgumentError for a count out of range or a
// garbage DATARAX_NUM_CPU_DEVICES, and when already initialized with different options.
void initialize(const InitOptions& options = {});
bool is_initialized();

// Every device of the job, in process order (then local order). Global ids are 0..count-1.
const std::vector<Device>& devices();
// This process's devices.
const std::vector<Device>& local_devices();
int device_count();
int local_device_count();
int process_index();
int process_count();

// For a program whose process failed on its own under a launcher (bad input on one host, say):
// ends every process of the job now, with `exit_code` (MPI_Abort), so that the others do not wait
// for this one until their collectives' deadline. Does nothing in a single-process job or before
// initialization. The datarax tools call it after printing their error.
void end_job_if_multi_process(int exit_code);

// Parses a CPU device count as given in DATARAX_NUM_CPU_DEVICES or on a command line: a whole
// number from 1 to kMaxCpuDevices. `source` names where the text came from, for the error message.
int parse_num_cpu_devices(std::string_view text, std::string_view source);

}  // namespace datarax
