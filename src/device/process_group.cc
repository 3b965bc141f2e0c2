#include "device/process_group.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "datarax/device_discovery.h"

#if DATARAX_HAVE_MPI
#include <mpi.h>
#endif

namespace datarax::detail {

bool spans_processes(const std::vector<Device>& devices) {
  const int me = process_index();
  return std::any_of(devices.begin(), devices.end(), [&](const Device& d) { return d.process_index != me; });
}

void end_job(int exit_code, const std::string& message) {
  int rank = 0;
#if DATARAX_HAVE_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  const bool mpi = initialized && !finalized;
  if (mpi) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
#endif
  if (!message.empty()) std::fprintf(stderr, "datarax: process %d: %s\n", rank, message.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
#if DATARAX_HAVE_MPI
  if (mpi) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
  std::_Exit(exit_code);
}

}  // namespace datarax::detail
