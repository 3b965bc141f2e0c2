#include "comm/mpi/group_communicator.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "comm/collective_call.h"
#include "core/reduce_kernels.h"
#include "core/buffer_pool.h"
#include "core/strings.h"
#include "core/target_clones.h"
#include "datarax/device_discovery.h"
#include "device/process_group.h"

namespace datarax::detail {

namespace {

// [begin, end) of chunk `part` of `count` elements in `parts` nearly equal chunks.
std::pair<std::int64_t, std::int64_t> chunk(std::int64_t count, int parts, int part) {
  return {count * part / parts, count * (part + 1) / parts};
}

// A member's local waits outlast its leader's cross-process deadline, so that a process that does
// not come is reported (and the job ended) by the leader, who knows which process it is.
std::chrono::milliseconds local_timeout(std::chrono::milliseconds timeout) {
  return 2 * timeout + std::chrono::seconds(10);
}

CollectiveDesc barrier_of(const CollectiveDesc& desc) {
  CollectiveDesc b;
  b.label = desc.label;
  return b;
}

// The ring's reduce-scatter receives a chunk of kSegmentFrom bytes or more in segments of kSegment
// bytes, at most kSegmentsAhead of them posted at a time, and folds each in while it is in cache
// (measured on 2 processes: 16-64 MiB all-reduces gain, 1-4 MiB ones lose, hence the threshold).
constexpr std::size_t kSegment = std::size_t{256} << 10;
constexpr std::size_t kSegmentFrom = std::size_t{8} << 20;
constexpr int kSegmentsAhead = 2;

// mine op= theirs, in the widest vectors the CPU has: the fold is the only arithmetic on the
// all-reduce's critical path and runs on data just received, still in cache, where a baseline
// x86-64 build's 4-wide SSE2 adds would trail MPI's own AVX reduction.
template <class T>
DATARAX_CLONES void fold(T* __restrict mine, const T* __restrict theirs, std::int64_t n, ReduceOp op) {
  combine(mine, theirs, n, op);
}

// The group ranks of `devices` that live in process `process`, ascending.
std::vector<int> ranks_in_process(const std::vector<Device>& devices, int process) {
  std::vector<int> ranks;
  for (int r = 0; r < static_cast<int>(devices.size()); ++r)
    if (devices[static_cast<std::size_t>(r)].process_index == process) ranks.push_back(r);
  return ranks;
}

std::vector<Device> pick(const std::vector<Device>& devices, const std::vector<int>& ranks) {
  std::vector<Device> out;
  for (int r : ranks) out.push_back(devices[static_cast<std::size_t>(r)]);
  return out;
}

}  // namespace

MpiGroup::MpiGroup(std::vector<Device> devices, std::string name, const std::string& key)
    : devices_(std::move(devices)),
      name_(std::move(name)),
      local_ranks_(ranks_in_process(devices_, process_index())),
      local_(std::make_unique<ThreadsGroup>(pick(devices_, local_ranks_), name_)),
      leaders_(devices_, name_, key, *local_) {
  for (int i = 0; i < static_cast<int>(local_ranks_.size()); ++i)
    local_comms_.push_back(std::make_unique<ThreadsCommunicator>(local_.get(), i, std::chrono::seconds(1)));
  published_.resize(local_ranks_.size());
  in_of_.resize(devices_.size());
}

MpiGroup::~MpiGroup() = default;

int MpiGroup::rank_of(const Device& device) const {
  for (int r : local_ranks_)
    if (devices_[static_cast<std::size_t>(r)] == device) return r;
  throw InvalidArgumentError("communicator: " + device.to_string() + " is not a member in this process of the group over " +
                             name_);
}

std::unique_ptr<GroupCommunicator> MpiGroup::communicator(int rank, std::chrono::milliseconds timeout) {
  const auto it = std::find(local_ranks_.begin(), local_ranks_.end(), rank);
  if (it == local_ranks_.end())
    throw InvalidArgumentError("MpiGroup::communicator: rank " + std::to_string(rank) +
                               " is not a device of this process");
  return std::make_unique<MpiCommunicator>(this, rank, static_cast<int>(it - local_ranks_.begin()), timeout);
}

void MpiGroup::run(int local_rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
                   WaitObserver* observer) {
  if (desc.kind == CollectiveKind::all_reduce)
    all_reduce(local_rank, desc, timeout, observer);
  else
    gathered(local_rank, desc, timeout, observer);
}

void MpiGroup::local_run(int local_rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
                         WaitObserver* observer) {
  if (local_->size() == 1) {
    if (local_->aborted()) local_->run(0, desc, timeout, observer);  // throws the abort
    return;
  }
  local_->run(local_rank, desc, local_timeout(timeout), observer);
}

// ---- the collectives -------------------------------------------------------------------------

void MpiGroup::all_reduce(int local_rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
                          WaitObserver* observer) {
  const Clock::time_point deadline = Clock::now() + timeout;
  const bool leader = local_rank == 0;
  const ReduceOp op = desc.op == ReduceOp::mean ? ReduceOp::sum : desc.op;  // divided at the end
  // 1. The process's members reduce among themselves into their outputs.
  std::exception_ptr local_mismatch;
  if (local_->size() > 1) {
    CollectiveDesc d = desc;
    d.op = op;
    try {
      local_run(local_rank, d, timeout, observer);
    } catch (const MismatchError& e) {
      // A mismatch inside this process: the leader still tells the other processes, so that they
      // throw too instead of waiting for it; so it is a failure every process finds. (The local
      // group may be aborted by now, by a member that threw first: the leader goes on regardless.)
      if (!leader) throw CrossProcessMismatch(e.what());
      local_mismatch = std::make_exception_ptr(CrossProcessMismatch(e.what()));
    }
  } else {
    local_run(local_rank, barrier_of(desc), timeout, observer);
    if (desc.in != desc.out && desc.count > 0)
      std::memcpy(desc.out, desc.in, static_cast<std::size_t>(desc.count) * byte_size(desc.dtype));
  }
  // 2. The leaders combine the processes' partials.
  if (leader) {
    error_ = leaders_.exchange_headers(desc, local_mismatch != nullptr, deadline, timeout);
    if (local_mismatch) std::rethrow_exception(local_mismatch);
    if (error_.empty() && desc.count > 0) {
      ring_all_reduce(desc.out, desc, op, deadline, timeout);
      if (desc.op == ReduceOp::mean)
        visit_dtype(desc.dtype, [&](auto t) {
          using T = decltype(t);
          using A = accumulator_t<T>;
          if constexpr (std::is_floating_point_v<A>) {
            T* p = static_cast<T*>(desc.out);
            const A n = static_cast<A>(size());
            for (std::int64_t i = 0; i < desc.count; ++i) p[i] = T(static_cast<A>(p[i]) / n);
          }
        });
    }
  }
  // 3. The members take the leader's result.
  if (local_->size() > 1) {
    CollectiveDesc b = barrier_of(desc);
    b.kind = CollectiveKind::broadcast;
    b.dtype = desc.dtype;
    b.count = desc.count;
    b.in = desc.out;
    b.out = desc.out;
    local_run(local_rank, b, timeout, observer);
  }
  if (!error_.empty()) throw CrossProcessMismatch(error_);
}

void MpiGroup::gathered(int local_rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
                        WaitObserver* observer) {
  const Clock::time_point deadline = Clock::now() + timeout;
  published_[static_cast<std::size_t>(local_rank)] = &desc;
  const CollectiveDesc barrier = barrier_of(desc);
  local_run(local_rank, barrier, timeout, observer);
  if (local_rank == 0) {
    // Every member of this process has published its call: check they agree, then tell the others.
    std::string local_error;
    const CollectiveDesc& first = *published_[0];
    for (std::size_t i = 1; i < published_.size() && local_error.empty(); ++i) {
      const CollectiveDesc& other = *published_[i];
      if (!same_call(first, other))
        local_error = mismatch_message(desc.label, name_, local_->devices()[0], first, local_->devices()[i], other);
    }
    error_ = leaders_.exchange_headers(desc, !local_error.empty(), deadline, timeout);
    if (!local_error.empty()) error_ = local_error;
    const std::size_t item = byte_size(desc.dtype);
    const std::size_t bytes = static_cast<std::size_t>(desc.count) * item;
    if (error_.empty() && desc.kind != CollectiveKind::barrier) {
      gather_inputs(bytes, desc, deadline, timeout);
      const int n = size();
      for (std::size_t i = 0; i < published_.size(); ++i) {
        const int rank = local_ranks_[i];
        auto* out = static_cast<std::byte*>(published_[i]->out);
        switch (desc.kind) {
          case CollectiveKind::all_gather:
            for (int r = 0; r < n; ++r)
              if (bytes > 0) std::memcpy(out + static_cast<std::size_t>(r) * bytes, in_of_[static_cast<std::size_t>(r)], bytes);
            break;
          case CollectiveKind::broadcast:
            if (bytes > 0) std::memcpy(out, in_of_[static_cast<std::size_t>(desc.root)], bytes);
            break;
          case CollectiveKind::all_to_all: {
            const std::size_t block = bytes / static_cast<std::size_t>(n);
            for (int j = 0; j < n; ++j)
              if (block > 0)
                std::memcpy(out + static_cast<std::size_t>(j) * block,
                            in_of_[static_cast<std::size_t>(j)] + static_cast<std::size_t>(rank) * block, block);
            break;
          }
          case CollectiveKind::permute: {
            const auto it = std::find(desc.send_to.begin(), desc.send_to.end(), rank);
            if (bytes == 0) break;
            if (it == desc.send_to.end())
              std::memset(out, 0, bytes);
            else
              std::memcpy(out, in_of_[static_cast<std::size_t>(it - desc.send_to.begin())], bytes);
            break;
          }
          case CollectiveKind::reduce_scatter:
            visit_dtype(desc.dtype, [&](auto t) {
              using T = decltype(t);
              // The reference order: every member's input in rank order, as the threads backend.
              std::vector<const T*> srcs(static_cast<std::size_t>(n));
              for (int r = 0; r < n; ++r) srcs[static_cast<std::size_t>(r)] = reinterpret_cast<const T*>(in_of_[static_cast<std::size_t>(r)]);
              const std::int64_t per = desc.count / n;
              T* dst = reinterpret_cast<T*>(out);
              reduce_range<T>(srcs.data(), n, per * rank, per * (rank + 1), desc.op,
                              [&](std::int64_t off, const auto* acc, std::int64_t len) {
                                store(dst + (off - per * rank), acc, len);
                              });
            });
            break;
          case CollectiveKind::all_reduce:
          case CollectiveKind::barrier:
            break;
        }
      }
    }
  }
  local_run(local_rank, barrier, timeout, observer);
  if (!error_.empty()) throw CrossProcessMismatch(error_);
}

void MpiGroup::ring_all_reduce(void* data, const CollectiveDesc& desc, ReduceOp op, Clock::time_point deadline,
                               std::chrono::milliseconds timeout) {
  const std::vector<Leaders::Process>& processes = leaders_.processes();
  const int me = leaders_.me();
  const int p = static_cast<int>(processes.size());
  if (p == 1) return;
  const std::size_t item = byte_size(desc.dtype);
  const int next = processes[static_cast<std::size_t>((me + 1) % p)].index;
  const int prev = processes[static_cast<std::size_t>((me + p - 1) % p)].index;
  auto* bytes = static_cast<std::byte*>(data);
  std::byte* staging = staging_.reserve(static_cast<std::size_t>(desc.count / p + 1) * item);
  // Reduce-scatter: at step s this process sends chunk me-s and folds chunk me-s-1 from prev into
  // its own; after p-1 steps chunk me+1 holds every process's contribution.
  for (int s = 0; s < p - 1; ++s) {
    const int send_c = (me - s + p) % p;
    const int recv_c = (me - s - 1 + 2 * p) % p;
    const auto [sb, se] = chunk(desc.count, p, send_c);
    const auto [rb, re] = chunk(desc.count, p, recv_c);
    // The incoming chunk arrives in segments, each folded in as soon as it is there, while it is
    // still in cache and the next one is on its way.
    // Small chunks go whole: segments only pay off once a chunk no longer fits in cache.
    const std::size_t segment = static_cast<std::size_t>(re - rb) * item >= kSegmentFrom ? kSegment : mpi::kMaxMessageBytes;
    const std::int64_t per_segment = std::max<std::int64_t>(1, static_cast<std::int64_t>(segment / item));
    // Sent in the same segments as received: a message must match its receive's size.
    for (std::int64_t at = sb; at < se; at += per_segment)
      leaders_.post_send(bytes + static_cast<std::size_t>(at) * item,
                static_cast<std::size_t>(std::min(per_segment, se - at)) * item, next, desc);
    const std::int64_t length = re - rb;
    auto post_segment = [&](std::int64_t at) {
      const std::int64_t n = std::min(per_segment, length - at);
      leaders_.post_recv(staging + static_cast<std::size_t>(at) * item, static_cast<std::size_t>(n) * item, prev, desc);
    };
    std::int64_t posted = 0;
    for (int k = 0; k < kSegmentsAhead && posted < length; ++k, posted += per_segment) post_segment(posted);
    for (std::int64_t at = 0; at < length; at += per_segment) {
      const std::size_t request = leaders_.posted() - static_cast<std::size_t>((posted - at + per_segment - 1) / per_segment);
      leaders_.wait(desc, deadline, timeout, "reducing across processes", request);
      if (posted < length) {
        post_segment(posted);
        posted += per_segment;
      }
      const std::int64_t n = std::min(per_segment, length - at);
      visit_dtype(desc.dtype, [&](auto t) {
        using T = decltype(t);
        T* mine = reinterpret_cast<T*>(bytes) + rb + at;
        const T* theirs = reinterpret_cast<const T*>(staging) + at;
        if constexpr (std::is_same_v<accumulator_t<T>, T> && !std::is_same_v<T, bool>) {
          fold(mine, theirs, n, op);  // one pass: mine op= theirs
        } else {
          const T* srcs[2] = {mine, theirs};
          reduce_range<T>(srcs, 2, 0, n, op,
                          [&](std::int64_t off, const auto* acc, std::int64_t len) { store(mine + off, acc, len); });
        }
      });
    }
    leaders_.wait(desc, deadline, timeout, "reducing across processes");
  }
  // All-gather: the complete chunks travel once around the ring.
  for (int s = 0; s < p - 1; ++s) {
    const int send_c = (me + 1 - s + p) % p;
    const int recv_c = (me - s + p) % p;
    const auto [sb, se] = chunk(desc.count, p, send_c);
    const auto [rb, re] = chunk(desc.count, p, recv_c);
    leaders_.post_recv(bytes + static_cast<std::size_t>(rb) * item, static_cast<std::size_t>(re - rb) * item, prev, desc);
    leaders_.post_send(bytes + static_cast<std::size_t>(sb) * item, static_cast<std::size_t>(se - sb) * item, next, desc);
    leaders_.wait(desc, deadline, timeout, "sharing the result across processes");
  }
}

void MpiGroup::gather_inputs(std::size_t bytes, const CollectiveDesc& desc, Clock::time_point deadline,
                             std::chrono::milliseconds timeout) {
  const std::vector<Leaders::Process>& processes = leaders_.processes();
  const int me = leaders_.me();
  std::vector<std::size_t> offsets(processes.size());
  std::size_t total = 0;
  for (std::size_t k = 0; k < processes.size(); ++k) {
    offsets[k] = total;
    total += processes[k].ranks.size() * bytes;
  }
  std::byte* all = gather_.reserve(total);
  // This process's members' inputs, packed into its own block.
  std::byte* own = all + offsets[static_cast<std::size_t>(me)];
  for (std::size_t i = 0; i < published_.size(); ++i)
    if (bytes > 0) std::memcpy(own + i * bytes, published_[i]->in, bytes);
  for (std::size_t k = 0; k < processes.size(); ++k) {
    if (static_cast<int>(k) == me) continue;
    leaders_.post_recv(all + offsets[k], processes[k].ranks.size() * bytes, processes[k].index, desc);
    leaders_.post_send(own, published_.size() * bytes, processes[k].index, desc);
  }
  leaders_.wait(desc, deadline, timeout, "gathering inputs across processes");
  for (std::size_t k = 0; k < processes.size(); ++k)
    for (std::size_t j = 0; j < processes[k].ranks.size(); ++j)
      in_of_[static_cast<std::size_t>(processes[k].ranks[j])] = all + offsets[k] + j * bytes;
}

std::byte* MpiGroup::Scratch::reserve(std::size_t n) {
  if (bytes < n) {
    block.reset();  // before allocating the larger one: the cache may hand this memory back
    block = allocate_buffer(n);
    bytes = n;
  }
  return block.get();
}

}  // namespace datarax::detail

namespace datarax::detail::mpi {

namespace {

// The group and one communicator per member in this process.
class Members final : public Group {
 public:
  Members(const std::vector<Device>& devices, const std::string& name, const std::string& key,
          std::chrono::milliseconds timeout)
      : group_(devices, name, key) {
    for (int r = 0; r < group_.size(); ++r)
      if (devices[static_cast<std::size_t>(r)].process_index == process_index())
        comms_.emplace(devices[static_cast<std::size_t>(r)], group_.communicator(r, timeout));
  }
  GroupCommunicator& communicator(const Device& device) override {
    const auto it = comms_.find(device);
    if (it == comms_.end()) group_.rank_of(device);  // throws, naming the device
    return *it->second;
  }

 private:
  MpiGroup group_;
  std::map<Device, std::unique_ptr<GroupCommunicator>> comms_;
};

}  // namespace

bool accepts(const std::vector<Device>& devices) { return spans_processes(devices); }

std::unique_ptr<Group> make_group(const std::vector<Device>& devices, const std::string& name, const std::string& key,
                                  std::chrono::milliseconds timeout) {
  return std::make_unique<Members>(devices, name, key, timeout);
}

bool every_process_knows(const std::exception_ptr& failure) {
  if (!failure || MpiGroup::abandoned()) return false;
  try {
    std::rethrow_exception(failure);
  } catch (const CrossProcessMismatch&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace datarax::detail::mpi
