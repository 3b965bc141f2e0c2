// The MPI bootstrap of a multi-process job: joining the MPI world, datarax's private communicator,
// and MPI's errors turned into ours.
//
// Part of device's internal interface: device discovery (initialize) joins here, and the MPI
// backend of comm (src/comm/mpi) sends its messages on comm(); nothing else sees MPI.
#pragma once

#include <mpi.h>

#include <string>
#include <string_view>
#include <vector>

namespace datarax::detail::mpi {

struct World {
  int rank = 0;
  int size = 1;
  std::vector<int> device_counts;  // every process's local device count, by rank
  int host_devices = 0;            // the devices of every process on this host (shared memory)
};

// Initializes MPI with MPI_THREAD_MULTIPLE (devices of one process call MPI from their own
// threads, collectives over different axes at the same time) and exchanges local device counts.
// Throws Error when MPI gives a lower thread level. MPI is finalized at exit, once, unless the
// program initialized MPI itself (then it finalizes it too).
World join(int local_devices);

// datarax's duplicate of MPI_COMM_WORLD (errors return instead of aborting); ranks are process
// indices.
MPI_Comm comm();
// The largest tag MPI allows on comm().
int tag_upper_bound();

// Throws CollectiveError "<what>: <MPI's text for rc>" unless rc is MPI_SUCCESS.
void check(int rc, std::string_view what);
std::string error_text(int rc);

}  // namespace datarax::detail::mpi
