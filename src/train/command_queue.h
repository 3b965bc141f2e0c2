// CommandQueue: how the host loop hands work to the devices' loop and learns it is done.
//
// The devices run one SPMD launch for the whole run, looping over commands (a training step, an
// evaluation, a snapshot of the state, stop); the host thread posts them, numbered 0, 1, 2, ...,
// each into slot c % kSlots of a ring the caller owns. With two slots the host fills command c + 1
// (loads and shards the next batch) while the devices run command c, and a slot is refilled only
// once every device has finished the command that used it.
//
// Every wait has a deadline and ends early on abort(): the devices' waits throw (their launch then
// fails and ends), the host's throw the devices' failure. The queue moves no data; the slots do.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "core/wait_word.h"

namespace datarax::train::detail {

class CommandQueue {
 public:
  static constexpr std::uint32_t kSlots = 2;

  // `devices`: this process's devices, each of which completes every command.
  CommandQueue(int devices, std::chrono::milliseconds timeout) : devices_(devices), timeout_(timeout) {}

  // Host: command `posted()` (slot posted() % kSlots) may be filled: waits until the command that
  // last used its slot has completed.
  void wait_for_slot();
  // Host: command posted() is filled; the devices may take it.
  void post();
  std::uint32_t posted() const { return posted_.load(); }
  // Host: waits until every device has completed command `c`.
  void wait_completed(std::uint32_t c);

  // Device: waits until command `c` is posted.
  void wait_posted(std::uint32_t c);
  // Device: this device has finished command `c` (commands complete in order).
  void complete(std::uint32_t c);

  // Ends every wait, now and later, with an error naming `reason` (the first reason is kept):
  // the host calls it when it fails, the launch when a device failed. True for the first call.
  bool abort(const std::string& reason);

 private:
  // Waits while `word` holds a value for which `ready` is false; `who` and `what` for messages.
  template <class Ready>
  void wait(const datarax::detail::WaitWord& word, Ready&& ready, const char* who, const char* what);

  const int devices_;
  const std::chrono::milliseconds timeout_;
  datarax::detail::WaitWord posted_;     // commands posted
  // Completions per slot: every device adds 1 per command it finishes, so command c is complete
  // once slot c % kSlots has counted devices * (c / kSlots + 1). Counting per slot, not overall:
  // a device may finish command c + 1 before another finishes c (commands without collectives),
  // never c + kSlots (not posted until c is complete).
  std::atomic<std::uint64_t> done_[kSlots] = {};
  datarax::detail::WaitWord doorbell_;   // bumped when a command completes
  bool completed(std::uint32_t c) const {
    return done_[c % kSlots].load(std::memory_order_acquire) >=
           static_cast<std::uint64_t>(devices_) * (c / kSlots + 1);
  }
  std::atomic<bool> aborted_{false};
  std::mutex reason_mu_;
  std::string reason_;
};

}  // namespace datarax::train::detail
