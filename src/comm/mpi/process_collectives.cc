#include "comm/mpi/process_collectives.h"

#include <algorithm>
#include <string>

#include "comm/mpi/requests.h"
#include "core/strings.h"
#include "datarax/communicator.h"
#include "datarax/device_discovery.h"
#include "device/mpi/world.h"
#include "device/process_group.h"

namespace datarax::detail::mpi {

std::vector<std::vector<std::byte>> all_gather_across_processes(std::span<const std::byte> mine, std::string_view op) {
  const auto timeout = default_collective_timeout();
  const auto deadline = Clock::now() + timeout;
  const std::string what = std::string(op) + ": exchanging data between processes";
  auto wait = [&](MPI_Request& request) {
    std::span<MPI_Request> one(&request, 1);
    if (wait_all(one, deadline, [] { return false; }, what) != WaitResult::done)
      end_job(1, what + ": timed out after " + seconds(timeout) +
                     "; a process did not call it (every process must); ending the job");
  };
  const int n = process_count();
  // Sizes first (bytes, as long long: a process may hold more than 2 GiB), then the data in
  // pieces that fit MPI's int counts.
  long long size = static_cast<long long>(mine.size());
  std::vector<long long> sizes(static_cast<std::size_t>(n));
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Iallgather(&size, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, comm(), &request), what);
  wait(request);
  std::vector<std::vector<std::byte>> out(static_cast<std::size_t>(n));
  for (int p = 0; p < n; ++p) out[static_cast<std::size_t>(p)].resize(static_cast<std::size_t>(sizes[static_cast<std::size_t>(p)]));
  // Each round moves up to kMaxMessageBytes from every process; the total of a round must fit an
  // int too (MPI's displacements), so a round carries at most kMaxMessageBytes / n per process.
  const long long piece = static_cast<long long>(kMaxMessageBytes) / n;
  for (long long offset = 0;; offset += piece) {
    bool any = false;
    std::vector<int> counts(static_cast<std::size_t>(n)), displs(static_cast<std::size_t>(n));
    long long total = 0;
    for (int p = 0; p < n; ++p) {
      const long long left = std::max(0LL, sizes[static_cast<std::size_t>(p)] - offset);
      counts[static_cast<std::size_t>(p)] = static_cast<int>(std::min(left, piece));
      displs[static_cast<std::size_t>(p)] = static_cast<int>(total);
      total += counts[static_cast<std::size_t>(p)];
      any = any || left > 0;
    }
    if (!any) break;
    std::vector<std::byte> recv(static_cast<std::size_t>(total));
    const int my_count = counts[static_cast<std::size_t>(process_index())];
    check(MPI_Iallgatherv(mine.data() + std::min(offset, size), my_count, MPI_BYTE, recv.data(), counts.data(),
                          displs.data(), MPI_BYTE, comm(), &request),
          what);
    wait(request);
    for (int p = 0; p < n; ++p)
      std::copy_n(recv.data() + displs[static_cast<std::size_t>(p)], counts[static_cast<std::size_t>(p)],
                  out[static_cast<std::size_t>(p)].data() + offset);
  }
  return out;
}

}  // namespace datarax::detail::mpi
