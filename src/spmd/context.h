// The state behind an SPMD launch: which mesh, which device the calling worker thread runs, and
// the cached communicators its collectives use.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "comm/backends.h"
#include "comm/group_communicator.h"
#include "datarax/collectives.h"
#include "datarax/mesh.h"

namespace datarax::detail {

struct DeviceContext;

// One run_spmd call.
class Launch {
 public:
  Launch(const Mesh& mesh, std::chrono::milliseconds timeout) : mesh_(mesh), timeout_(timeout) {}
  const Mesh& mesh() const { return mesh_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Registers a group this launch uses, so that abort() reaches it; throws if already aborted.
  void touch(LocalGroup& group, const std::string& label);
  // Aborts every group the launch touched, and those it touches later.
  void abort(const std::string& reason);
  // After every device returned: clears aborted groups for the next launch.
  void finish();

  // The contexts of this launch's devices (set once before the devices start).
  void set_contexts(std::vector<DeviceContext>* contexts) { contexts_ = contexts; }
  DeviceContext* context_of(const Device& device) const;

 private:
  std::vector<DeviceContext>* contexts_ = nullptr;
  const Mesh& mesh_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  bool aborted_ = false;
  std::string reason_;
  std::vector<LocalGroup*> touched_;
};

// A device's state during a launch. As the WaitObserver of its collectives it publishes where it
// waits (once a wait is slow) and checks, while waiting, that the devices it waits for are not
// stuck for good in a collective of another group: that is a mismatch, reported naming both sides.
// A device merely waiting elsewhere is not enough — it may be one collective behind, over another
// axis, and come soon; it is stuck for good when the barrier it waits at lacks the checking device
// itself (a cycle) or a device that has finished its function (which will never arrive).
struct DeviceContext final : WaitObserver {
  Launch* launch = nullptr;
  Device device;
  // A communicator this device fetched in this launch, with the labels its collectives use in
  // messages ("psum over axis \"data\""), made once per operation name: collectives on the hot
  // path allocate nothing.
  struct CommEntry {
    std::vector<std::string> axes;
    GroupCommunicator* comm = nullptr;
    std::vector<std::pair<const char*, std::string>> labels;  // by the operation's name literal
    const std::string& label(const char* op);
  };
  std::vector<CommEntry> comms;

  // Set once the device's function has returned or thrown: it will join no collective again.
  std::atomic<bool> finished{false};

  void waiting_in(const LocalGroup* group, const CollectiveDesc* desc, int phase, std::uint64_t call) override;
  void check_missing(const LocalGroup& group, const CollectiveDesc& desc, const std::vector<Device>& missing) override;
  // Sizes what a slow wait writes (the label, the devices another barrier lacks) for a mesh of
  // `devices`, so that no wait allocates, the first slow one after warm-up included.
  void reserve_waits(std::size_t devices);

 private:
  std::mutex wait_mu_;
  const LocalGroup* waiting_group_ = nullptr;
  int waiting_phase_ = 0;
  std::uint64_t waiting_call_ = 0;
  std::string waiting_label_;  // a copy: the descriptor dies with the call
  std::vector<Device> theirs_;  // check_missing's: the devices another device's barrier lacks
};

// The calling thread's context; null outside SPMD.
DeviceContext* current_context();
void set_current_context(DeviceContext* context);

// The context, or InvalidArgumentError naming `op` when called outside SPMD.
DeviceContext& require_context(const char* op);

// The communicator of the current device for a collective over `axes` (validated against the mesh,
// the error naming `op`), created on first use and cached for the process's lifetime.
DeviceContext::CommEntry& communicator_for(DeviceContext& context, const AxisNames& axes, const char* op);

}  // namespace datarax::detail
