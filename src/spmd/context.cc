#include "spmd/context.h"

#include <algorithm>
#include <map>
#include <memory>

#include "core/strings.h"
#include "datarax/collectives.h"
#include "datarax/error.h"
#include "datarax/device_discovery.h"


namespace datarax::detail {

namespace {

thread_local DeviceContext* t_context = nullptr;

// The groups of one (mesh, axes) pair that have devices in this process: one communicator per
// local device, from whichever backend comm picks for each group.
struct GroupSet {
  bool built = false;
  std::vector<std::unique_ptr<Group>> groups;
  std::map<Device, GroupCommunicator*> comms;
};

void build_groups(GroupSet& set, const Mesh& mesh, const AxisNames& axes, const std::string& key,
                  std::chrono::milliseconds timeout) {
  const std::string name = axes.to_string();
  const int me = process_index();
  int index = 0;
  for (const auto& devices : mesh.groups(axes.to_vector())) {
    const int group_index = index++;
    if (std::none_of(devices.begin(), devices.end(), [&](const Device& d) { return d.process_index == me; })) continue;
    set.groups.push_back(make_group(devices, name, key + "|" + std::to_string(group_index), timeout));
    for (const Device& d : devices)
      if (d.process_index == me) set.comms[d] = &set.groups.back()->communicator(d);
  }
  set.built = true;
}

std::mutex g_registry_mu;
std::map<std::string, GroupSet>& registry() {
  static auto* r = new std::map<std::string, GroupSet>;  // leaked: outlives static destructors
  return *r;
}

}  // namespace

void Launch::touch(LocalGroup& group, const std::string& label) {
  std::lock_guard lock(mu_);
  if (aborted_) throw CollectiveError(label + ": aborted because " + reason_);
  for (LocalGroup* g : touched_)
    if (g == &group) return;
  touched_.push_back(&group);
}

void Launch::abort(const std::string& reason) {
  std::lock_guard lock(mu_);
  if (!aborted_) {
    aborted_ = true;
    reason_ = reason;
  }
  for (LocalGroup* g : touched_) g->abort(reason_);
}

void Launch::finish() {
  std::lock_guard lock(mu_);
  for (LocalGroup* g : touched_)
    if (aborted_ || g->aborted()) g->reset();
}

DeviceContext* Launch::context_of(const Device& device) const {
  if (contexts_ == nullptr) return nullptr;
  for (DeviceContext& c : *contexts_)
    if (c.device == device) return &c;
  return nullptr;
}

void DeviceContext::waiting_in(const LocalGroup* group, const CollectiveDesc* desc, int phase, std::uint64_t call) {
  std::lock_guard lock(wait_mu_);
  waiting_group_ = group;
  waiting_phase_ = phase;
  waiting_call_ = call;
  // assign/clear keep the string's buffer: a slow wait allocates only the first time.
  if (desc)
    waiting_label_.assign(desc->label);
  else
    waiting_label_.clear();
}

void DeviceContext::reserve_waits(std::size_t devices) {
  theirs_.reserve(devices);
  waiting_label_.reserve(128);  // collective labels ("psum over axis \"data\"") are shorter
}

void DeviceContext::check_missing(const LocalGroup& group, const CollectiveDesc& desc,
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
    other->waiting_group_->missing(other->waiting_phase_, other->waiting_call_, theirs_);
    for (const Device& w : theirs_) {
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
  labels.emplace_back(op, std::string(op) + " over " + AxisNames(axes).to_string());
  return labels.back().second;
}

DeviceContext::CommEntry& communicator_for(DeviceContext& context, const AxisNames& axes, const char* op) {
  const std::span<const std::string_view> names = axes.names();
  for (auto& entry : context.comms)
    if (std::equal(entry.axes.begin(), entry.axes.end(), names.begin(), names.end())) return entry;
  const Mesh& mesh = context.launch->mesh();
  if (names.empty()) throw InvalidArgumentError(std::string(op) + ": no mesh axis named; name at least one");
  for (std::string_view a : names)
    if (!mesh.has_axis(a))
      throw InvalidArgumentError(std::string(op) + ": unknown axis " + quoted(a) + "; the mesh has axes (" +
                                 join(mesh.axis_names(), ", ") + ")");
  std::vector<std::string> owned = axes.to_vector();
  const std::string key = mesh.to_string() + "|" + join(owned, ",");
  GroupCommunicator* comm = nullptr;
  {
    std::lock_guard lock(g_registry_mu);
    GroupSet& set = registry()[key];
    if (!set.built) build_groups(set, mesh, axes, key, context.launch->timeout());
    comm = set.comms.at(context.device);
  }
  comm->set_timeout(context.launch->timeout());
  comm->set_observer(&context);
  context.launch->touch(comm->local_group(), std::string(op) + " over " + axes.to_string());
  context.comms.push_back({std::move(owned), comm, {}});
  return context.comms.back();
}

}  // namespace datarax::detail
