// WaitWord: waiting on a 32-bit atomic word with a deadline: spin briefly, then sleep in the kernel (futex).
//
// Why not std::atomic::wait: it has no timeout, and every wait in a collective needs one.
// Why spin first: a collective on idle cores completes in well under a microsecond, far less than
// a futex round trip. When the waiting group has more threads than the machine has cores, spinning
// only steals time from the thread being waited for, so the spin is skipped.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace datarax::detail {

using Clock = std::chrono::steady_clock;

class WaitWord {
 public:
  std::uint32_t load() const { return word_.load(std::memory_order_acquire); }
  // Changes the word and wakes every sleeper.
  void bump();
  // Waits while the word equals `seen`, for at most until `until`. Returns true once it changed,
  // false when `until` passed first. `spin` allows a busy phase first.
  bool wait_while(std::uint32_t seen, Clock::time_point until, bool spin) const;

 private:
  std::atomic<std::uint32_t> word_{0};
  mutable std::atomic<int> sleepers_{0};
};

}  // namespace datarax::detail
