// MPI requests: the largest message, and waiting for requests with a deadline, never blocking
// inside MPI.
//
// MPI's blocking calls (MPI_Wait, MPI_Allreduce) cannot be given a deadline or interrupted, so a
// process that never comes would hang its peers forever. Every wait here polls MPI_Testall (which
// also drives MPI's progress) and gives up when the deadline passes or the caller's stop condition
// holds. Between polls it yields the core, unless told to spin: yielding is right when the job has
// more threads than the host has cores, but where each device thread has a core of its own it only
// delays the next poll (measured on 2 cores: a raw MPI exchange-and-fold of 4 MiB between 2
// processes took up to 30% longer with it).
#pragma once

#include <mpi.h>
#include <sched.h>

#include <chrono>
#include <cstddef>
#include <span>
#include <string_view>

#include "device/mpi/world.h"

namespace datarax::detail::mpi {

using Clock = std::chrono::steady_clock;

// The most bytes one message carries: MPI counts are ints, so larger data goes in several messages.
inline constexpr std::size_t kMaxMessageBytes = std::size_t{1} << 30;

enum class WaitResult { done, timed_out, stopped };

// Until every request completed (they become MPI_REQUEST_NULL), `deadline` passed or `stop()`
// returned true. An MPI error throws CollectiveError naming `what`. `spin`: poll without yielding
// for the first 2^16 polls (tens of milliseconds), instead of the first 256.
template <class Stop>
WaitResult wait_all(std::span<MPI_Request> requests, Clock::time_point deadline, Stop&& stop,
                    std::string_view what, bool spin = false) {
  const unsigned busy = spin ? 1u << 16 : 256u;
  for (unsigned polls = 0;; ++polls) {
    int done = 0;
    check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), what);
    if (done) return WaitResult::done;
    if (stop()) return WaitResult::stopped;
    if (polls % 64 == 63 && Clock::now() >= deadline) return WaitResult::timed_out;
    if (polls >= busy) sched_yield();
  }
}

// The requests in `requests` that have not completed (tests each without waiting).
inline bool completed(MPI_Request& request) {
  if (request == MPI_REQUEST_NULL) return true;
  int done = 0;
  MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  return done != 0;
}

}  // namespace datarax::detail::mpi
