// The leaders of a group that spans processes, and the messages between them.
//
// One device per process leads (its first member of the group); the leaders alone talk MPI, point
// to point, on datarax's own communicator (mpi/world.h) with a tag derived from the group's key,
// so that groups never take each other's messages. This is the transport the group's collectives
// (mpi_communicator.h) are written in: post sends and receives, then wait for them.
//
// Every wait polls with the collective's deadline (mpi/wait.h). A process that does not come in
// time, or an MPI error, ends the job (end_job, device/process_group.h) naming the collective, the phase and the
// processes that did not arrive: the processes that did come would otherwise wait forever. A wait
// may instead give up when this process's own devices failed (its local group aborted); the
// requests it leaves pending would match the next collective's messages, so the process is marked
// (abandoned()) and the SPMD runtime ends the job.
//
// Before any data moves, the leaders exchange a header per call (kind, op, dtype, count, root,
// permutation, the group's call number): every leader compares every header, so a mismatch between
// processes is found by every process and thrown on every device, and the job goes on.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/mpi/requests.h"
#include "comm/threads/group_communicator.h"
#include "datarax/communicator.h"
#include "datarax/device.h"

namespace datarax::detail {

class Leaders {
 public:
  struct Process {
    int index = 0;           // process index (MPI rank)
    std::vector<int> ranks;  // its members' group ranks, ascending
  };

  // `devices`: the whole group by rank (kept by reference: the owner outlives this). `key` names
  // the group uniquely in the job, the same text on every process. `local`: this process's members,
  // whose abort stops a wait and whose spin policy the waits follow.
  Leaders(const std::vector<Device>& devices, std::string name, const std::string& key, const ThreadsGroup& local);

  // The group's processes in ascending order, and this process's position among them.
  const std::vector<Process>& processes() const { return processes_; }
  int me() const { return me_; }

  // Exchanges this call's header with every other leader and compares them: "" when all agree,
  // else the message that describes the mismatch. `local_mismatch`: this process's own devices
  // disagreed (then the exchange completes even though the local group aborted).
  std::string exchange_headers(const CollectiveDesc& desc, bool local_mismatch, Clock::time_point deadline,
                               std::chrono::milliseconds timeout);

  // Posts a send / receive of `bytes` to / from process `peer`, in messages of at most
  // mpi::kMaxMessageBytes (MPI counts are ints).
  void post_send(const void* data, std::size_t bytes, int peer, const CollectiveDesc& desc) {
    post(true, const_cast<void*>(data), bytes, peer, desc);  // MPI_Isend only reads it
  }
  void post_recv(void* data, std::size_t bytes, int peer, const CollectiveDesc& desc) {
    post(false, data, bytes, peer, desc);
  }
  // Requests posted and not yet waited for with first == 0.
  std::size_t posted() const { return requests_.size(); }

  // Waits for the requests from index `first` on; with first == 0 it then forgets every request.
  // Ends the job on timeout or an MPI error. `stoppable`: give up, throwing CollectiveError, when
  // this process's local group aborts.
  void wait(const CollectiveDesc& desc, Clock::time_point deadline, std::chrono::milliseconds timeout,
            const char* phase, std::size_t first = 0, bool stoppable = true);

  // True once some group of this process gave up waiting on MPI requests.
  static bool abandoned() { return g_abandoned.load(std::memory_order_acquire); }

 private:
  struct Header {
    std::uint64_t key = 0;   // the group's key hash: a different value is a tag collision
    std::uint64_t call = 0;  // the group's collective number on this process
    std::int64_t count = 0;
    std::uint64_t send_to = 0;  // hash of the permutation
    std::int32_t root = 0;
    std::uint8_t kind = 0, op = 0, dtype = 0, local_mismatch = 0;
  };

  void post(bool send, void* data, std::size_t bytes, int peer, const CollectiveDesc& desc);

  const std::vector<Device>& devices_;
  std::string name_;
  const ThreadsGroup& local_;
  std::vector<Process> processes_;
  int me_ = 0;
  int tag_ = 0;
  std::uint64_t key_hash_ = 0;
  std::uint64_t calls_ = 0;
  std::vector<MPI_Request> requests_;
  std::vector<int> peers_;        // the process each request is for
  std::vector<Header> headers_;  // by position in processes_
  static std::atomic<bool> g_abandoned;
};

}  // namespace datarax::detail
