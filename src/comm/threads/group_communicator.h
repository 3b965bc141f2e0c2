// The in-process backend: the devices of one process, each driven by its own thread, share one
// ThreadsGroup and exchange data through each other's buffers directly (no staging copies).
//
// Every collective is two barriers around a data phase. At the first barrier each member has
// published its descriptor (and so its buffer pointers); members then check that all descriptors
// match, and each does its share of the data movement reading the others' buffers; the second
// barrier keeps every buffer alive and unchanged until all members are done with it.
// Aborts and timeouts: a member may leave the first barrier (and throw) only while it is
// incomplete, and then nobody gets past it; once it completed, everyone moves data and waits at
// the second barrier for everyone, abort or not (the data phase never blocks, so that wait is
// short), because leaving early would free a buffer that others are still reading or writing.
// All-reduce: member r reduces slice r of all n inputs (in rank order) and writes it into all n
// outputs, so the group reads n*S and writes n*S bytes in all.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "comm/backends.h"
#include "comm/group_communicator.h"
#include "core/wait_word.h"
#include "datarax/communicator.h"

namespace datarax::detail {

class ThreadsGroup final : public LocalGroup {
 public:
  // `name` describes the group in messages, e.g. "axis \"data\"".
  ThreadsGroup(std::vector<Device> devices, std::string name);

  int size() const { return static_cast<int>(devices_.size()); }
  const std::vector<Device>& devices() const { return devices_; }
  const std::string& name() const override { return name_; }
  // Whether the members' waits spin before they sleep: only while this host's device threads (all
  // processes') fit on its cores, else spinning steals the core of the thread being waited for.
  bool spins() const { return spin_; }

  // A communicator for member `rank`; one per member thread. Its waits time out after `timeout`
  // (changeable later through ThreadsCommunicator::set_timeout).
  std::unique_ptr<Communicator> communicator(int rank, std::chrono::milliseconds timeout);

  void abort(const std::string& reason) override;
  bool aborted() const override { return aborted_.load(std::memory_order_acquire); }
  // Also clears the barrier state.
  void reset() override;

  // Runs member `rank`'s part of its next collective on this group. `observer` may be null.
  void run(int rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
           WaitObserver* observer = nullptr);

  // Phase 0: the barrier before the data phase; 1: the one after it.
  void missing(int phase, std::uint64_t call, std::vector<Device>& out) const override;

 private:
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> reached[2] = {0, 0};  // last call that reached barrier 0 / 1
    std::uint64_t calls = 0;                         // collectives this member started
    const CollectiveDesc* desc = nullptr;
    // The members a slow wait of this member finds missing: sized for every member at
    // construction, so that the first slow wait after warm-up does not allocate either.
    std::vector<Device> absent;
  };

  void barrier(int rank, std::uint64_t call, int phase, const CollectiveDesc& desc,
               Clock::time_point deadline, std::chrono::milliseconds timeout, WaitObserver* observer);
  // Takes back this member's arrival at the barrier numbered `epoch`, unless that barrier has
  // completed (then false: the member must stay, as everyone else goes on).
  bool retract(std::uint64_t epoch);
  [[noreturn]] void throw_aborted(const CollectiveDesc& desc) const;
  void check_matching(const CollectiveDesc& mine) const;
  void move_data(int rank, const CollectiveDesc& desc) const;

  std::vector<Device> devices_;
  std::string name_;
  std::unique_ptr<Slot[]> slots_;
  bool spin_;  // members (and other processes' devices on this host) fit on the cores: spinning helps

  // (barriers completed << 32) | members arrived at the current barrier. One word, so that the
  // arrival that completes a barrier and a member leaving it (retract) cannot both succeed.
  alignas(64) std::atomic<std::uint64_t> arrived_{0};
  alignas(64) WaitWord generation_;
  std::atomic<bool> aborted_{false};
  mutable std::mutex reason_mu_;
  std::string reason_;
};

class ThreadsCommunicator final : public GroupCommunicator {
 public:
  ThreadsCommunicator(ThreadsGroup* group, int rank, std::chrono::milliseconds timeout)
      : group_(group), rank_(rank), timeout_(timeout) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  const std::vector<Device>& devices() const override { return group_->devices(); }
  void set_timeout(std::chrono::milliseconds timeout) override { timeout_ = timeout; }
  void set_observer(WaitObserver* observer) override { observer_ = observer; }
  LocalGroup& local_group() const override { return *group_; }

 protected:
  void run(const CollectiveDesc& desc) override { group_->run(rank_, desc, timeout_, observer_); }

 private:
  ThreadsGroup* group_;
  int rank_;
  std::chrono::milliseconds timeout_;
  WaitObserver* observer_ = nullptr;
};

}  // namespace datarax::detail

namespace datarax::detail::threads {

// The threads backend serves a group whose devices are all in this process (`key` is not needed).
bool accepts(const std::vector<Device>& devices);
std::unique_ptr<Group> make_group(const std::vector<Device>& devices, const std::string& name, const std::string& key,
                                  std::chrono::milliseconds timeout);
// Its failures never reach another process.
inline bool every_process_knows(const std::exception_ptr&) { return false; }

}  // namespace datarax::detail::threads
