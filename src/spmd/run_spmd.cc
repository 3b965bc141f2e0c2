#include <algorithm>

#include "comm/backends.h"
#include "core/strings.h"
#include "datarax/communicator.h"
#include "datarax/device_discovery.h"
#include "datarax/spmd.h"
#include "device/process_group.h"
#include "spmd/context.h"
#include "spmd/worker_pool.h"

namespace datarax {

namespace {
using detail::message_of;
}  // namespace

void run_spmd(const Mesh& mesh, const std::function<void(const Device&)>& fn, const SpmdOptions& options) {
  if (detail::WorkerPool::on_worker_thread())
    throw InvalidArgumentError("run_spmd: called from inside an SPMD function (on " +
                               detail::current_context()->device.to_string() +
                               "); SPMD functions do not nest");
  std::vector<Device> mine;
  std::vector<int> workers;
  for (const Device& d : mesh.devices()) {
    if (d.process_index != process_index()) continue;
    if (d.kind != DeviceKind::cpu)
      throw InvalidArgumentError("run_spmd: device " + d.to_string() +
                                 " is not a CPU device; this build runs SPMD code on CPU devices only");
    if (d.local_index < 0 || d.local_index >= local_device_count())
      throw InvalidArgumentError("run_spmd: device " + d.to_string() + " has local index " +
                                 std::to_string(d.local_index) + "; this process has " +
                                 std::to_string(local_device_count()) + " devices");
    mine.push_back(d);
    workers.push_back(d.local_index);
  }
  detail::Launch launch(mesh, options.timeout.value_or(default_collective_timeout()));
  std::vector<detail::DeviceContext> contexts(mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) {
    contexts[i].launch = &launch;
    contexts[i].device = mine[i];
    contexts[i].reserve_waits(static_cast<std::size_t>(mesh.size()));
  }
  launch.set_contexts(&contexts);
  // The first device to fail (by time) is the one reported; the others were aborted because of it.
  std::mutex first_mu;
  int first_failed = -1;
  const auto errors = detail::WorkerPool::instance().run(workers, [&](int i) {
    detail::DeviceContext& ctx = contexts[static_cast<std::size_t>(i)];
    detail::set_current_context(&ctx);
    try {
      fn(ctx.device);
    } catch (...) {
      ctx.finished.store(true, std::memory_order_release);
      detail::set_current_context(nullptr);
      {
        std::lock_guard lock(first_mu);
        if (first_failed < 0) first_failed = i;
      }
      launch.abort("device " + ctx.device.to_string() + " failed: " + message_of(std::current_exception()));
      throw;
    }
    ctx.finished.store(true, std::memory_order_release);
    detail::set_current_context(nullptr);
  });
  launch.finish();
  if (first_failed >= 0) {
    const auto& err = errors[static_cast<std::size_t>(first_failed)];
    const Device& d = mine[static_cast<std::size_t>(first_failed)];
    // The other processes' devices may be waiting for this one in a collective, and no exception
    // reaches them: end the job, unless every process found the failure (a cross-process mismatch).
    if (mesh.spans_processes() && !detail::every_process_knows(err))
      detail::end_job(1, "device " + d.to_string() + " failed: " + message_of(err) +
                             "; ending the job, since the other processes' devices would wait for it");
    throw DeviceError(d, err, "device " + d.to_string() + ": " + message_of(err));
  }
}

bool in_spmd() { return detail::current_context() != nullptr; }

const Device& current_device() { return detail::require_context("current_device").device; }

const Mesh& current_mesh() { return detail::require_context("current_mesh").launch->mesh(); }

}  // namespace datarax
