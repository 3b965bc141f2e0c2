#include "core/wait_word.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DATARAX_PAUSE() _mm_pause()
#else
#define DATARAX_PAUSE() ((void)0)
#endif

namespace datarax::detail {

namespace {

// Tens of microseconds on current x86 CPUs (a pause costs about 10 to 140 cycles): long enough to
// cover a collective among idle cores, short enough to give the core back soon (docs/performance.md).
constexpr int kSpinIterations = 4000;
constexpr auto kMaxSleep = std::chrono::milliseconds(50);  // re-check the clock at least this often

void futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t seen, std::chrono::nanoseconds d) {
  timespec ts{static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

}  // namespace

void WaitWord::bump() {
  word_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake_all(&word_);
}

bool WaitWord::wait_while(std::uint32_t seen, Clock::time_point until, bool spin) const {
  if (spin) {
    for (int i = 0; i < kSpinIterations; ++i) {
      if (word_.load(std::memory_order_acquire) != seen) return true;
      DATARAX_PAUSE();
    }
  } else {
    for (int i = 0; i < 4; ++i) {
      if (word_.load(std::memory_order_acquire) != seen) return true;
      sched_yield();
    }
  }
  while (true) {
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    if (word_.load(std::memory_order_seq_cst) != seen) {
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    const auto now = Clock::now();
    if (now >= until) {
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    futex_wait(&word_, seen, std::min<std::chrono::nanoseconds>(until - now, kMaxSleep));
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    if (word_.load(std::memory_order_acquire) != seen) return true;
  }
}

}  // namespace datarax::detail
