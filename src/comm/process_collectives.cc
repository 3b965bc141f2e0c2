#include "datarax/process_collectives.h"

#include <string>

#include "datarax/device_discovery.h"
#include "datarax/error.h"

#if DATARAX_HAVE_MPI
#include "comm/mpi/process_collectives.h"
#endif

namespace datarax {

std::vector<std::vector<std::byte>> process_all_gather(std::span<const std::byte> mine, std::string_view op) {
  if (process_count() == 1) return {std::vector<std::byte>(mine.begin(), mine.end())};
#if DATARAX_HAVE_MPI
  return detail::mpi::all_gather_across_processes(mine, op);
#else
  throw Error(std::string(op) + ": " + std::to_string(process_count()) + " processes, and this build has no MPI");
#endif
}

std::vector<std::string> process_all_gather(const std::string& mine, std::string_view op) {
  std::vector<std::string> out;
  for (const auto& bytes : process_all_gather(std::as_bytes(std::span(mine.data(), mine.size())), op))
    out.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return out;
}

}  // namespace datarax
