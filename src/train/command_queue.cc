#include "train/command_queue.h"

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax::train::detail {

using datarax::detail::Clock;

template <class Ready>
void CommandQueue::wait(const datarax::detail::WaitWord& word, Ready&& ready, const char* who, const char* what) {
  const auto deadline = Clock::now() + timeout_;
  while (true) {
    const std::uint32_t seen = word.load();
    if (ready(seen)) return;
    if (aborted_.load(std::memory_order_acquire)) {
      std::lock_guard lock(reason_mu_);
      throw Error(std::string(who) + ": stopped because " + reason_);
    }
    // Sleep, not spin: the threads that would end the wait need the cores.
    if (!word.wait_while(seen, deadline, /*spin=*/false) && Clock::now() >= deadline)
      throw TimeoutError(std::string(who) + ": timed out after " + datarax::detail::seconds(timeout_) + " waiting for " +
                         what + " (the deadline is DATARAX_COLLECTIVE_TIMEOUT_S)");
  }
}

void CommandQueue::wait_for_slot() {
  const std::uint32_t c = posted();
  if (c < kSlots) return;
  wait(doorbell_, [&](std::uint32_t) { return completed(c - kSlots); }, "train", "the devices to finish a step");
}

void CommandQueue::post() { posted_.bump(); }

void CommandQueue::wait_completed(std::uint32_t c) {
  wait(doorbell_, [&](std::uint32_t) { return completed(c); }, "train", "the devices to finish a step");
}

void CommandQueue::wait_posted(std::uint32_t c) {
  wait(posted_, [&](std::uint32_t posted) { return posted > c; }, "train (device loop)", "the host's next step");
}

void CommandQueue::complete(std::uint32_t c) {
  // The last device of this process to finish the command rings: every device is then done with
  // its slot, and its writes there are visible to whoever reads done_ (acquire).
  const std::uint64_t target = static_cast<std::uint64_t>(devices_) * (c / kSlots + 1);
  if (done_[c % kSlots].fetch_add(1, std::memory_order_acq_rel) + 1 == target) doorbell_.bump();
}

bool CommandQueue::abort(const std::string& reason) {
  {
    std::lock_guard lock(reason_mu_);
    if (aborted_.load(std::memory_order_relaxed)) return false;
    reason_ = reason;
    aborted_.store(true, std::memory_order_release);
  }
  posted_.bump();
  doorbell_.bump();
  return true;
}

}  // namespace datarax::train::detail
