#include "comm/mpi/leaders.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "comm/mpi/requests.h"
#include "device/mpi/world.h"
#include "device/process_group.h"
#include "core/strings.h"
#include "datarax/device_discovery.h"

namespace datarax::detail {

namespace {

std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace

std::atomic<bool> Leaders::g_abandoned{false};

Leaders::Leaders(const std::vector<Device>& devices, std::string name, const std::string& key, const ThreadsGroup& local)
    : devices_(devices), name_(std::move(name)), local_(local) {
  const int me = process_index();
  std::map<int, std::vector<int>> by_process;
  for (int r = 0; r < static_cast<int>(devices_.size()); ++r)
    by_process[devices_[static_cast<std::size_t>(r)].process_index].push_back(r);
  for (auto& [index, ranks] : by_process) {
    if (index == me) me_ = static_cast<int>(processes_.size());
    processes_.push_back({index, std::move(ranks)});
  }
  key_hash_ = fnv1a(key.data(), key.size());
  const int tags = std::max(2, mpi::tag_upper_bound());
  tag_ = 1 + static_cast<int>(key_hash_ % static_cast<std::uint64_t>(tags - 1));
  headers_.resize(processes_.size());
}

std::string Leaders::exchange_headers(const CollectiveDesc& desc, bool local_mismatch, Clock::time_point deadline,
                                      std::chrono::milliseconds timeout) {
  const bool reduces = desc.kind == CollectiveKind::all_reduce || desc.kind == CollectiveKind::reduce_scatter;
  Header& mine = headers_[static_cast<std::size_t>(me_)];
  mine = Header{};
  mine.key = key_hash_;
  mine.call = ++calls_;
  mine.count = desc.count;
  mine.send_to = desc.send_to.empty() ? 0 : fnv1a(desc.send_to.data(), desc.send_to.size() * sizeof(int));
  mine.root = desc.root;
  mine.kind = static_cast<std::uint8_t>(desc.kind);
  mine.op = static_cast<std::uint8_t>(reduces ? desc.op : ReduceOp::sum);
  mine.dtype = static_cast<std::uint8_t>(desc.dtype);
  mine.local_mismatch = local_mismatch ? 1 : 0;
  if (processes_.size() == 1) return {};
  for (std::size_t k = 0; k < processes_.size(); ++k) {
    if (static_cast<int>(k) == me_) continue;
    post_recv(&headers_[k], sizeof(Header), processes_[k].index, desc);
    post_send(&mine, sizeof(Header), processes_[k].index, desc);
  }
  // With a local mismatch this process's other devices have thrown already, aborting the local
  // group: the exchange must finish anyway, since the other processes wait for this header.
  wait(desc, deadline, timeout, "exchanging call descriptors", 0, /*stoppable=*/!local_mismatch);
  auto describe = [&](const Header& h) {
    CollectiveDesc d;
    d.kind = static_cast<CollectiveKind>(h.kind);
    d.op = static_cast<ReduceOp>(h.op);
    d.dtype = static_cast<DType>(h.dtype);
    d.count = h.count;
    d.root = h.root;
    return d.to_string() + " (its collective #" + std::to_string(h.call) + " on this group)";
  };
  for (std::size_t k = 0; k < processes_.size(); ++k) {
    const Header& h = headers_[k];
    const std::string who = "process " + std::to_string(processes_[k].index);
    if (h.local_mismatch && static_cast<int>(k) != me_)
      return std::string(desc.label) + ": mismatched collectives in the group over " + name_ + ": the devices of " +
             who + " made different calls (its error names them)";
    if (h.key != mine.key)
      return std::string(desc.label) + ": " + who + " sent a message of another group on this group's MPI tag " +
             std::to_string(tag_) + "; rename a mesh axis to change the tag";
    if (h.call != mine.call || h.kind != mine.kind || h.op != mine.op || h.dtype != mine.dtype ||
        h.count != mine.count || h.root != mine.root || h.send_to != mine.send_to)
      return std::string(desc.label) + ": mismatched collectives across processes in the group over " + name_ +
             ": process " + std::to_string(process_index()) + " called " + describe(mine) + " but " + who +
             " called " + describe(h);
  }
  return {};
}

void Leaders::post(bool send, void* data, std::size_t bytes, int peer, const CollectiveDesc& desc) {
  auto* p = static_cast<std::byte*>(data);
  std::size_t done = 0;
  do {
    const std::size_t n = std::min(mpi::kMaxMessageBytes, bytes - done);
    requests_.push_back(MPI_REQUEST_NULL);
    peers_.push_back(peer);
    const int rc = send ? MPI_Isend(p + done, static_cast<int>(n), MPI_BYTE, peer, tag_, mpi::comm(), &requests_.back())
                        : MPI_Irecv(p + done, static_cast<int>(n), MPI_BYTE, peer, tag_, mpi::comm(), &requests_.back());
    if (rc != MPI_SUCCESS)
      end_job(1, std::string(desc.label) + (send ? ": MPI_Isend to process " : ": MPI_Irecv from process ") +
                     std::to_string(peer) + " failed: " + mpi::error_text(rc));
    done += n;
  } while (done < bytes);
}

void Leaders::wait(const CollectiveDesc& desc, Clock::time_point deadline, std::chrono::milliseconds timeout,
                   const char* phase, std::size_t first, bool stoppable) {
  mpi::WaitResult result = mpi::WaitResult::done;
  const std::span<MPI_Request> some(requests_.data() + first, requests_.size() - first);
  try {
    result = mpi::wait_all(some, deadline, [&] { return stoppable && local_.aborted(); }, phase, local_.spins());
  } catch (const CollectiveError& e) {
    end_job(1, std::string(desc.label) + ": " + e.what() + "; ending the job, as the other processes cannot finish " +
                   desc.to_string() + " without this one");
  }
  if (result == mpi::WaitResult::timed_out) {
    std::vector<int> missing;
    for (std::size_t i = first; i < requests_.size(); ++i)
      if (!mpi::completed(requests_[i]) && std::find(missing.begin(), missing.end(), peers_[i]) == missing.end())
        missing.push_back(peers_[i]);
    std::sort(missing.begin(), missing.end());
    std::vector<std::string> names;
    for (int process : missing) {
      std::vector<std::string> devs;
      for (const Device& d : devices_)
        if (d.process_index == process) devs.push_back(d.to_string());
      names.push_back(std::to_string(process) + " (" + join(devs, ", ") + ")");
    }
    end_job(1, std::string(desc.label) + ": timed out after " + seconds(timeout) + " " + phase + " in " +
                   desc.to_string() + " over " + name_ + "; process" + (names.size() == 1 ? " " : "es ") +
                   join(names, ", ") + " did not arrive; ending the job so that no process waits forever");
  }
  if (first == 0) {
    requests_.clear();
    peers_.clear();
  }
  if (result == mpi::WaitResult::stopped) {
    // Requests left pending would match the next collective's messages: this process can take part
    // in no further cross-process collective, and run_spmd ends the job.
    g_abandoned.store(true, std::memory_order_release);
    throw CollectiveError(std::string(desc.label) + ": aborted while " + phase +
                          " because a device of this process failed");
  }
}

}  // namespace datarax::detail
