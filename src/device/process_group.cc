#include "device/process_group.h"

#include <algorithm>
#include <string>

#include "datarax/communicator.h"
#include "datarax/runtime.h"

#if DATARAX_HAVE_MPI
#include "comm/mpi/wait.h"
#include "comm/mpi/world.h"
#endif

namespace datarax::detail {

std::vector<std::vector<std::byte>> all_gather_from_processes(std::span<const std::byte> mine, std::string_view op) {
  if (process_count() == 1) return {std::vector<std::byte>(mine.begin(), mine.end())};
#if DATARAX_HAVE_MPI
  const auto timeout = default_collective_timeout();
  const auto deadline = mpi::Clock::now() + timeout;
  const std::string what = std::string(op) + ": exchanging data between processes";
  auto wait = [&](MPI_Request& request) {
    std::span<MPI_Request> one(&request, 1);
    if (mpi::wait_all(one, deadline, [] { return false; }, what) != mpi::WaitResult::done)
      mpi::abort_job(what + ": timed out after " + std::to_string(timeout.count() / 1000) +
                     " s; a process did not call it (every process must); ending the job");
  };
  const int n = process_count();
  // Sizes first (bytes, as long long: a process may hold more than 2 GiB), then the data in
  // pieces that fit MPI's int counts.
  long long size = static_cast<long long>(mine.size());
  std::vector<long long> sizes(static_cast<std::size_t>(n));
  MPI_Request request = MPI_REQUEST_NULL;
  mpi::check(MPI_Iallgather(&size, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, mpi::comm(), &request), what);
  wait(request);
  std::vector<std::vector<std::byte>> out(static_cast<std::size_t>(n));
  for (int p = 0; p < n; ++p) out[static_cast<std::size_t>(p)].resize(static_cast<std::size_t>(sizes[static_cast<std::size_t>(p)]));
  constexpr long long kPiece = 1LL << 30;
  for (long long offset = 0;; offset += kPiece) {
    bool any = false;
    std::vector<int> counts(static_cast<std::size_t>(n)), displs(static_cast<std::size_t>(n));
    std::vector<std::byte> recv;
    long long total = 0;
    for (int p = 0; p < n; ++p) {
      const long long left = std::max(0LL, sizes[static_cast<std::size_t>(p)] - offset);
      counts[static_cast<std::size_t>(p)] = static_cast<int>(std::min(left, kPiece));
      displs[static_cast<std::size_t>(p)] = static_cast<int>(total);
      total += counts[static_cast<std::size_t>(p)];
      any = any || left > 0;
    }
    if (!any) break;
    recv.resize(static_cast<std::size_t>(total));
    const int my_count = counts[static_cast<std::size_t>(process_index())];
    mpi::check(MPI_Iallgatherv(mine.data() + std::min(offset, size), my_count, MPI_BYTE, recv.data(), counts.data(), displs.data(),
                               MPI_BYTE, mpi::comm(), &request),
               what);
    wait(request);
    for (int p = 0; p < n; ++p)
      std::copy_n(recv.data() + displs[static_cast<std::size_t>(p)], counts[static_cast<std::size_t>(p)],
                  out[static_cast<std::size_t>(p)].data() + offset);
  }
  return out;
#else
  throw Error(std::string(op) + ": more than one process without MPI");
#endif
}

}  // namespace datarax::detail
