#include "comm/threads/group_communicator.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <thread>

#include "comm/collective_call.h"
#include "core/reduce_kernels.h"
#include "core/strings.h"
#include "device/process_group.h"

namespace datarax::detail {

namespace {

// [begin, end) of part `part` of `count` elements split into `parts` nearly equal runs, each a
// multiple of 16 elements except the last (so members do not share cache lines).
std::pair<std::int64_t, std::int64_t> part_range(std::int64_t count, int parts, int part) {
  const std::int64_t per = (count + parts - 1) / parts;
  const std::int64_t aligned = (per + 15) / 16 * 16;
  const std::int64_t begin = std::min(count, aligned * part);
  return {begin, std::min(count, begin + aligned)};
}

}  // namespace

ThreadsGroup::ThreadsGroup(std::vector<Device> devices, std::string name)
    : devices_(std::move(devices)),
      name_(std::move(name)),
      slots_(new Slot[devices_.size()]),
      // Spinning helps only while the members have a core each; under mpirun the devices of the
      // other processes on this host compete for the cores too.
      spin_(static_cast<unsigned>(size() + other_devices_on_this_host()) <=
            std::max(1u, std::thread::hardware_concurrency())) {
  for (std::size_t r = 0; r < devices_.size(); ++r) slots_[r].absent.reserve(devices_.size());
}

std::unique_ptr<Communicator> ThreadsGroup::communicator(int rank, std::chrono::milliseconds timeout) {
  return std::make_unique<ThreadsCommunicator>(this, rank, timeout);
}

void ThreadsGroup::abort(const std::string& reason) {
  {
    std::lock_guard lock(reason_mu_);
    if (aborted_.load(std::memory_order_relaxed)) return;
    reason_ = reason;
    aborted_.store(true, std::memory_order_release);
  }
  generation_.bump();  // wakes every waiter; they see the abort
}

void ThreadsGroup::reset() {
  std::lock_guard lock(reason_mu_);
  aborted_.store(false, std::memory_order_release);
  reason_.clear();
  arrived_.store(0, std::memory_order_release);
  for (int r = 0; r < size(); ++r) {
    slots_[static_cast<std::size_t>(r)].reached[0].store(0);
    slots_[static_cast<std::size_t>(r)].reached[1].store(0);
    slots_[static_cast<std::size_t>(r)].calls = 0;
  }
}

void ThreadsGroup::throw_aborted(const CollectiveDesc& desc) const {
  std::lock_guard lock(reason_mu_);
  throw CollectiveError(std::string(desc.label) + ": aborted because " + reason_);
}

void ThreadsGroup::missing(int phase, std::uint64_t call, std::vector<Device>& out) const {
  out.clear();
  for (int r = 0; r < size(); ++r)
    if (slots_[static_cast<std::size_t>(r)].reached[phase].load(std::memory_order_acquire) < call)
      out.push_back(devices_[static_cast<std::size_t>(r)]);
}

bool ThreadsGroup::retract(std::uint64_t epoch) {
  std::uint64_t word = arrived_.load(std::memory_order_acquire);
  while (word >> 32 == epoch && (word & 0xffffffffu) < static_cast<std::uint64_t>(size()))
    if (arrived_.compare_exchange_weak(word, word - 1, std::memory_order_acq_rel)) return true;
  return false;
}

void ThreadsGroup::barrier(int rank, std::uint64_t call, int phase, const CollectiveDesc& desc,
                           Clock::time_point deadline, std::chrono::milliseconds timeout,
                           WaitObserver* observer) {
  // Past the data phase (phase 1) aborts and deadlines do not apply: see the file comment.
  const bool may_leave = phase == 0;
  if (may_leave && aborted()) throw_aborted(desc);
  Slot& slot = slots_[static_cast<std::size_t>(rank)];
  slot.reached[phase].store(call, std::memory_order_release);
  const std::uint64_t word = arrived_.fetch_add(1, std::memory_order_acq_rel);
  const std::uint64_t epoch = word >> 32;
  if ((word & 0xffffffffu) + 1 == static_cast<std::uint64_t>(size())) {
    arrived_.store((epoch + 1) << 32, std::memory_order_release);
    generation_.bump();
    return;
  }
  auto completed = [&] { return arrived_.load(std::memory_order_acquire) >> 32 != epoch; };
  // Leaves the incomplete barrier by throwing `error`; returns instead if it completed meanwhile.
  auto leave = [&](const auto& error) {
    if (!retract(epoch)) return;
    slot.reached[phase].store(call - 1, std::memory_order_release);
    throw error;
  };
  // Wait in slices. A wait that outlasts the first slice is slow enough to be worth reporting to
  // the observer, which may then spot a missing member that can never come (a mismatch).
  constexpr auto kSlice = std::chrono::milliseconds(20);
  struct Registration {
    WaitObserver* observer = nullptr;
    ~Registration() {
      if (observer) observer->waiting_in(nullptr, nullptr, 0, 0);
    }
  } registration;
  while (true) {
    const std::uint32_t gen = generation_.load();
    if (completed()) return;
    if (may_leave && aborted()) {
      std::string reason;
      {
        std::lock_guard lock(reason_mu_);
        reason = reason_;
      }
      return leave(CollectiveError(std::string(desc.label) + ": aborted because " + reason));
    }
    const auto now = Clock::now();
    if (may_leave && now >= deadline) {
      // Timed out: name who arrived and who did not, then abort the group so nobody else waits.
      std::vector<Device> absent;
      missing(phase, call, absent);
      std::vector<std::string> arrived, missing_names;
      for (const Device& d : devices_)
        (std::find(absent.begin(), absent.end(), d) == absent.end() ? arrived : missing_names).push_back(d.to_string());
      const std::string msg = std::string(desc.label) + ": timed out after " + seconds(timeout) +
                              " waiting for the group over " + name_ + "; arrived: " +
                              (arrived.empty() ? "(none)" : join(arrived, ", ")) +
                              "; missing: " + join(missing_names, ", ");
      if (!retract(epoch)) return;
      slot.reached[phase].store(call - 1, std::memory_order_release);
      abort("a collective timed out (" + msg + ")");
      throw TimeoutError(msg);
    }
    const auto until = !may_leave ? now + kSlice : observer ? std::min(deadline, now + kSlice) : deadline;
    if (generation_.wait_while(gen, until, spin_)) continue;
    if (may_leave && observer && Clock::now() < deadline) {
      if (!registration.observer) {
        observer->waiting_in(this, &desc, phase, call);
        registration.observer = observer;
      }
      // A slow wait (a device still computing) is no reason to allocate: the slot's buffer.
      missing(phase, call, slot.absent);
      try {
        observer->check_missing(*this, desc, slot.absent);
      } catch (const CollectiveError& e) {
        return leave(e);
      }
    }
  }
}

void ThreadsGroup::check_matching(const CollectiveDesc& mine) const {
  const CollectiveDesc& first = *slots_[0].desc;
  for (int r = 1; r < size(); ++r) {
    const CollectiveDesc& other = *slots_[static_cast<std::size_t>(r)].desc;
    if (!same_call(first, other))
      throw MismatchError(
          mismatch_message(mine.label, name_, devices_[0], first, devices_[static_cast<std::size_t>(r)], other));
  }
}

void ThreadsGroup::run(int rank, const CollectiveDesc& desc, std::chrono::milliseconds timeout,
                       WaitObserver* observer) {
  Slot& slot = slots_[static_cast<std::size_t>(rank)];
  const std::uint64_t call = ++slot.calls;
  const Clock::time_point deadline = Clock::now() + timeout;
  slot.desc = &desc;
  barrier(rank, call, 0, desc, deadline, timeout, observer);
  // Every member finds the same mismatch, if any, since all read the same descriptors; nobody
  // leaves (and so frees its descriptor or buffers) before everyone is done with them, whatever
  // happens in between.
  std::exception_ptr failure;
  try {
    check_matching(desc);
    move_data(rank, desc);
  } catch (...) {
    failure = std::current_exception();
  }
  barrier(rank, call, 1, desc, deadline, timeout, observer);
  if (failure) std::rethrow_exception(failure);
}

void ThreadsGroup::move_data(int rank, const CollectiveDesc& desc) const {
  const int n = size();
  const std::int64_t count = desc.count;
  const std::size_t item = byte_size(desc.dtype);
  auto in_of = [&](int r) { return static_cast<const std::byte*>(slots_[static_cast<std::size_t>(r)].desc->in); };
  auto out_of = [&](int r) { return static_cast<std::byte*>(slots_[static_cast<std::size_t>(r)].desc->out); };

  switch (desc.kind) {
    case CollectiveKind::barrier:
      return;
    case CollectiveKind::all_reduce:
    case CollectiveKind::reduce_scatter:
      visit_dtype(desc.dtype, [&](auto t) {
        using T = decltype(t);
        // The members' inputs; on the stack for groups of up to 64, so a collective allocates nothing.
        const T* on_stack[64];
        std::vector<const T*> on_heap(n > 64 ? static_cast<std::size_t>(n) : 0);
        const T** srcs = n > 64 ? on_heap.data() : on_stack;
        for (int r = 0; r < n; ++r) srcs[r] = reinterpret_cast<const T*>(in_of(r));
        if (desc.kind == CollectiveKind::all_reduce) {
          const auto [begin, end] = part_range(count, n, rank);
          reduce_range<T>(srcs, n, begin, end, desc.op, [&](std::int64_t off, const auto* acc, std::int64_t len) {
            for (int r = 0; r < n; ++r) store(reinterpret_cast<T*>(out_of(r)) + off, acc, len);
          });
        } else {
          const std::int64_t per = count / n;
          T* out = reinterpret_cast<T*>(out_of(rank));
          reduce_range<T>(srcs, n, per * rank, per * (rank + 1), desc.op,
                          [&](std::int64_t off, const auto* acc, std::int64_t len) {
                            store(out + (off - per * rank), acc, len);
                          });
        }
      });
      return;
    case CollectiveKind::all_gather:
      // Member `rank` writes its input into block `rank` of every output.
      for (int r = 0; r < n; ++r) {
        std::byte* dst = out_of(r) + static_cast<std::size_t>(rank * count) * item;
        if (count > 0 && dst != in_of(rank)) std::memcpy(dst, in_of(rank), static_cast<std::size_t>(count) * item);
      }
      return;
    case CollectiveKind::broadcast:
      if (rank != desc.root && count > 0)
        std::memcpy(out_of(rank), in_of(desc.root), static_cast<std::size_t>(count) * item);
      return;
    case CollectiveKind::all_to_all: {
      const std::size_t block = static_cast<std::size_t>(count / n) * item;
      for (int j = 0; j < n; ++j)
        if (block > 0) std::memcpy(out_of(rank) + static_cast<std::size_t>(j) * block, in_of(j) + static_cast<std::size_t>(rank) * block, block);
      return;
    }
    case CollectiveKind::permute: {
      const std::size_t bytes = static_cast<std::size_t>(count) * item;
      const auto it = std::find(desc.send_to.begin(), desc.send_to.end(), rank);
      if (bytes == 0) return;
      if (it == desc.send_to.end())
        std::memset(out_of(rank), 0, bytes);
      else
        std::memcpy(out_of(rank), in_of(static_cast<int>(it - desc.send_to.begin())), bytes);
      return;
    }
  }
}

}  // namespace datarax::detail

namespace datarax::detail::threads {

namespace {

// One communicator per member, each for its own thread.
class Members final : public Group {
 public:
  Members(const std::vector<Device>& devices, const std::string& name, std::chrono::milliseconds timeout)
      : group_(devices, name) {
    for (int r = 0; r < group_.size(); ++r) comms_.push_back(std::make_unique<ThreadsCommunicator>(&group_, r, timeout));
  }
  GroupCommunicator& communicator(const Device& device) override {
    const auto& devices = group_.devices();
    const auto it = std::find(devices.begin(), devices.end(), device);
    if (it == devices.end())
      throw InvalidArgumentError("communicator: " + device.to_string() + " is not a member of the group over " +
                                 group_.name());
    return *comms_[static_cast<std::size_t>(it - devices.begin())];
  }

 private:
  ThreadsGroup group_;
  std::vector<std::unique_ptr<ThreadsCommunicator>> comms_;
};

}  // namespace

bool accepts(const std::vector<Device>& devices) { return !spans_processes(devices); }

std::unique_ptr<Group> make_group(const std::vector<Device>& devices, const std::string& name, const std::string&,
                                  std::chrono::milliseconds timeout) {
  return std::make_unique<Members>(devices, name, timeout);
}

}  // namespace datarax::detail::threads
