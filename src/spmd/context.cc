#include "spmd/context.h"

#include <algorithm>
#include <map>
#include <memory>

#include "core/strings.h"
#include "datarax/error.h"
#include "datarax/runtime.h"

#if DATARAX_HAVE_MPI
#include "comm/mpi/mpi_communicator.h"
#endif

namespace datarax::detail {

namespace {

thread_local DeviceContext* t_context = nullptr;

std::string axes_label(const std::vector<std::string>& axes) {
  if (axes.size() == 1) return "axis " + quoted(axes[0]);
  return "axes (" + join(axes, ", ") + ")";
}

// The groups of one (mesh, axes) pair that have devices in this process, and one communicator per
// local device. A group inside this process is a ThreadsGroup; one that spans processes an MpiGroup.
struct GroupSet {
  bool built = false;
  std::vector<std::unique_ptr<ThreadsGroup>> groups;
#if DATARAX_HAVE_MPI
  std::vector<std::unique_ptr<MpiGroup>> mpi_groups;
#endif
  std::map<Device, std::unique_ptr<GroupCommunicator>> comms;
};

void build_groups(GroupSet& set, const Mesh& mesh, const std::vector<std::string>& names,
                  [[maybe_unused]] const std::string& key, std::chrono::milliseconds timeout) {
  const std::string name = axes_label(names);
  const int me = process_index();
  int index = 0;
  for (auto& devices : mesh.groups(names)) {
    [[maybe_unused]] const int group_index = index++;
    const bool mine = std::any_of(devices.begin(), devices.end(), [&](const Device& d) { return d.process_index == me; });
    if (!mine) continue;
    const bool local = std::all_of(devices.begin(), devices.end(), [&](const Device& d) { return d.process_index == me; });
    if (local) {
      auto group = std::make_unique<ThreadsGroup>(devices, name);
      for (int r = 0; r < group->size(); ++r)
        set.comms[devices[static_cast<std::size_t>(r)]] = std::unique_ptr<GroupCommunicator>(
            static_cast<ThreadsCommunicator*>(group->communicator(r, timeout).release()));
      set.groups.push_back(std::move(group));
      continue;
    }
#if DATARAX_HAVE_MPI
    auto group = std::make_unique<MpiGroup>(devices, name, key + "|" + std::to_string(group_index));
    for (int r = 0; r < group->size(); ++r)
      if (devices[static_cast<std::size_t>(r)].process_index == me)
        set.comms[devices[static_cast<std::size_t>(r)]] = group->communicator(r, timeout);
    set.mpi_groups.push_back(std::move(group));
#else
    throw Error("collectives over " + name + ": the group spans processes, and this build has no MPI");
#endif
  }
  set.built = true;
}

std::mutex g_registry_mu;
std::map<std::string, GroupSet>& registry() {
  static auto* r = new std::map<std::string, GroupSet>;  // leaked: outlives static destructors
  return *r;
}

}  // namespace

void Launch::touch(ThreadsGroup& group, const std::string& label) {
  std::lock_guard lock(mu_);
  if (aborted_) throw CollectiveError(label + ": aborted because " + reason_);
  for (ThreadsGroup* g : touched_)
    if (g == &group) return;
  touched_.push_back(&group);
}

void Launch::abort(const std::string& reason) {
  std::lock_guard lock(mu_);
  if (!aborted_) {
    aborted_ = true;
    reason_ = reason;
  }
  for (ThreadsGroup* g : touched_) g->abort(reason_);
}

void Launch::finish() {
  std::lock_guard lock(mu_);
  for (ThreadsGroup* g : touched_)
    if (aborted_ || g->aborted()) g->reset();
}

DeviceContext* Launch::context_of(const Device& device) const {
  if (contexts_ == nullptr) return nullptr;
  for (DeviceContext& c : *contexts_)
    if (c.device == device) return &c;
  return nullptr;
}

void DeviceContext::waiting_in(const ThreadsGroup* group, const CollectiveDesc* desc, int phase,
                               std::uint64_t call) {
  std::lock_guard lock(wait_mu_);
  waiting_group_ = group;
  waiting_phase_ = phase;
  waiting_call_ = call;
  waiting_label_ = desc ? std::string(desc->label) : std::string();
}

void DeviceContext::check_missing(const ThreadsGroup& group, const CollectiveDesc& desc,
                                  const std::vector<Device>& missing) {
  for (const Device& d : missing) {
    DeviceContext* other = launch->context_of(d);
    if (other == nullptr || other == this) continue;
    std::lock_guard lock(other->wait_mu_);
    if (other->waiting_group_ == nullptr || other->waiting_group_ == &group) continue;
    // `d` waits in another group. Stuck for good only if its barrier lacks this device or one
    // that has finished; read from the barrier itself, so a stale registration (its wait just
    // ended) finds nobody missing.
    bool stuck = false;
    for (const Device& w : other->waiting_group_->missing(other->waiting_phase_, other->waiting_call_)) {
      const DeviceContext* wc = launch->context_of(w);
      stuck = stuck || w == device || (wc != nullptr && wc->finished.load(std::memory_order_acquire));
    }
    if (stuck)
      throw CollectiveError(std::string(desc.label) + ": mismatched collectives: " + device.to_string() +
                            " called " + std::string(desc.label) + " but " + d.to_string() + " is waiting in " + other->waiting_label_ +
                            "; every device of a group must make the same collective calls in the same order");
  }
}

DeviceContext* current_context() { return t_context; }
void set_current_context(DeviceContext* context) { t_context = context; }

DeviceContext& require_context(const char* op) {
  if (t_context == nullptr)
    throw InvalidArgumentError(std::string(op) +
                               ": called outside an SPMD function; collectives run inside "
                               "run_spmd, shard_map or pmap, which give them a device and a mesh");
  return *t_context;
}

const std::string& DeviceContext::CommEntry::label(const char* op) {
  for (const auto& [name, text] : labels)
    if (name == op) return text;
  labels.emplace_back(op, std::string(op) + " over " + axes_label(axes));
  return labels.back().second;
}

DeviceContext::CommEntry& communicator_for(DeviceContext& context, std::span<const std::string_view> axes,
                                           const char* op) {
  for (auto& entry : context.comms)
    if (std::equal(entry.axes.begin(), entry.axes.end(), axes.begin(), axes.end())) return entry;
  const Mesh& mesh = context.launch->mesh();
  if (axes.empty()) throw InvalidArgumentError(std::string(op) + ": no mesh axis named; name at least one");
  const std::vector<std::string> names(axes.begin(), axes.end());
  for (const std::string& a : names)
    if (!mesh.has_axis(a))
      throw InvalidArgumentError(std::string(op) + ": unknown axis " + quoted(a) +
                                 "; the mesh has axes (" + join(mesh.axis_names(), ", ") + ")");
  const std::string key = mesh.to_string() + "|" + join(names, ",");
  GroupCommunicator* comm = nullptr;
  {
    std::lock_guard lock(g_registry_mu);
    GroupSet& set = registry()[key];
    if (!set.built) build_groups(set, mesh, names, key, context.launch->timeout());
    comm = set.comms.at(context.device).get();
  }
  comm->set_timeout(context.launch->timeout());
  comm->set_observer(&context);
  context.launch->touch(comm->local_group(), std::string(op) + " over " + axes_label(names));
  context.comms.push_back({names, comm, {}});
  return context.comms.back();
}

}  // namespace datarax::detail
