#include "comm/process_collectives.h"

#include <string>

#include "datarax/device_discovery.h"
#include "datarax/error.h"

#if DATARAX_HAVE_MPI
#include "comm/mpi/process_collectives.h"
#endif

namespace datarax::detail {

std::vector<std::vector<std::byte>> all_gather_across_processes(std::span<const std::byte> mine, std::string_view op) {
  if (process_count() == 1) return {std::vector<std::byte>(mine.begin(), mine.end())};
#if DATARAX_HAVE_MPI
  return mpi::all_gather_across_processes(mine, op);
#else
  throw Error(std::string(op) + ": " + std::to_string(process_count()) + " processes, and this build has no MPI");
#endif
}

}  // namespace datarax::detail
