// The cross-process backend: a group of devices that spans processes (and hosts), hierarchical
// over the threads backend.
//
// Inside each process the group's members form a ThreadsGroup (shared memory); the process's
// first member is its leader and alone talks to the other processes' leaders over MPI, in
// point-to-point messages whose every wait has the collective's deadline (mpi/leaders.h). All-reduce,
// the hot path, runs in three phases:
//   1. the process's members reduce their inputs among themselves (threads backend, in parallel);
//   2. the leaders all-reduce the process partials with a ring (reduce-scatter, then all-gather:
//      each element reduced once, in one order, so every process gets the same bits), through a
//      staging buffer that is kept and reused, never allocated per call;
//   3. the members copy the result from their leader (threads broadcast).
// The other collectives gather every member's input to every leader (naive, n times the data,
// and the reference the all-reduce is tested against), and each leader writes its members'
// outputs. Before any data moves, the leaders exchange a header (kind, op, dtype, count, the
// group's call number): a mismatch between processes throws MismatchError on every member of
// every process, as within one. A process that does not come within the deadline, or an MPI error,
// ends the job (end_job, device/process_group.h) naming the collective and the missing processes:
// the processes that did come would otherwise wait forever.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "comm/backends.h"
#include "comm/group_communicator.h"
#include "comm/mpi/leaders.h"
#include "comm/threads/group_communicator.h"

namespace datarax::detail {

// A mismatch in a group that spans processes, which every process of the group finds and throws:
// the one failure of a cross-process collective that does not end the job.
class CrossProcessMismatch : public MismatchError {
 public:
  using MismatchError::MismatchError;
};

class MpiGroup {
 public:
  // `devices`: the whole group by rank, of which at least one device is in this process.
  // `key` names the group uniquely in the job (the same text on every process); its tag is
  // derived from it.
  MpiGroup(std::vector<Device> devices, std::string name, const std::string& key);
  ~MpiGroup();

  int size() const { return static_cast<int>(devices_.size()); }
  const std::vector<Device>& devices() const { return devices_; }
  const std::string& name() const { return name_; }
  ThreadsGroup& local_group() const { return *local_; }
  // True once some group gave up waiting on MPI requests (a device of this process failed
  // mid-collective): their messages are out of step from then on, and the job must end.
  static bool abandoned() { return Leaders::abandoned(); }

  // The communicator of the member with group rank `rank` (a device of this process).
  std::unique_ptr<GroupCommunicator> communicator(int rank, std::chrono::milliseconds timeout);
  // The group rank of `device`, a member in this process; InvalidArgumentError otherwise.
  int rank_of(const Device& device) const;

  // Member `local_rank` (its index among this process's members) runs its part of `desc`.
  void run(int local_rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
           WaitObserver* observer);

 private:
  void all_reduce(int local_rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
                  WaitObserver* observer);
  void gathered(int local_rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
                WaitObserver* observer);
  void local_run(int local_rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
                 WaitObserver* observer);

  // Leader only. The ring all-reduce of `count` elements of `data` across the processes.
  void ring_all_reduce(void* data, const CollectiveDesc& desc, ReduceOp op, Clock::time_point deadline,
                       std::chrono::milliseconds timeout);
  // Leader only. Every member's `bytes`-byte input into gather_, process by process; sets in_of_.
  void gather_inputs(std::size_t bytes, const CollectiveDesc& desc, Clock::time_point deadline,
                     std::chrono::milliseconds timeout);

  std::vector<Device> devices_;
  std::string name_;
  std::vector<int> local_ranks_;  // group ranks of this process's members, ascending
  std::unique_ptr<ThreadsGroup> local_;
  Leaders leaders_;  // used by the leader (local rank 0) only
  std::vector<std::unique_ptr<ThreadsCommunicator>> local_comms_;
  std::vector<const CollectiveDesc*> published_;  // by local rank, for the gathered collectives

  // Leader state, reused from call to call.
  std::string error_;            // set by the leader, read by every member after the last barrier
  // Reused scratch from the buffer cache (huge pages for large sizes, as Arrays get), grown on demand.
  struct Scratch {
    std::shared_ptr<std::byte> block;
    std::size_t bytes = 0;
    std::byte* reserve(std::size_t n);  // at least n bytes; the contents are not kept
  };
  Scratch staging_;  // the ring's incoming chunk
  Scratch gather_;   // every member's input (gathered collectives)
  std::vector<const std::byte*> in_of_;  // by group rank: its input inside gather_
};

class MpiCommunicator final : public GroupCommunicator {
 public:
  MpiCommunicator(MpiGroup* group, int rank, int local_rank, std::chrono::milliseconds timeout)
      : group_(group), rank_(rank), local_rank_(local_rank), timeout_(timeout) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  const std::vector<Device>& devices() const override { return group_->devices(); }
  void set_timeout(std::chrono::milliseconds timeout) override { timeout_ = timeout; }
  void set_observer(WaitObserver* observer) override { observer_ = observer; }
  LocalGroup& local_group() const override { return group_->local_group(); }

 protected:
  void run(const CollectiveDesc& desc) override { group_->run(local_rank_, desc, timeout_, observer_); }

 private:
  MpiGroup* group_;
  int rank_;
  int local_rank_;
  std::chrono::milliseconds timeout_;
  WaitObserver* observer_ = nullptr;
};

}  // namespace datarax::detail

namespace datarax::detail::mpi {

// The MPI backend serves a group that spans processes.
bool accepts(const std::vector<Device>& devices);
std::unique_ptr<Group> make_group(const std::vector<Device>& devices, const std::string& name, const std::string& key,
                                  std::chrono::milliseconds timeout);
// A CrossProcessMismatch, while no group of this process has abandoned MPI requests.
bool every_process_knows(const std::exception_ptr& failure);

}  // namespace datarax::detail::mpi
