// Internal interface of comm, for the SPMD runtime: what a backend implements beyond the public
// Communicator, whatever the backend (threads, MPI, NCCL).
//
//   GroupCommunicator  one member's communicator, with a deadline and a wait observer settable per
//                      launch, and its LocalGroup
//   LocalGroup         the group's members in this process: what the runtime aborts when one of
//                      its devices fails, and what wait observers ask who is missing
//   WaitObserver       told where a member waits, and asked while it waits whether the members it
//                      waits for can still come (the runtime's mismatch detection)
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "datarax/communicator.h"
#include "datarax/device.h"

namespace datarax::detail {

class LocalGroup {
 public:
  virtual ~LocalGroup() = default;
  // `name` describes the group in messages, e.g. "axis \"data\"".
  virtual const std::string& name() const = 0;
  // Makes every pending and future collective of the group throw CollectiveError with `reason`,
  // until reset(). Safe to call from any thread, any number of times (the first reason is kept).
  virtual void abort(const std::string& reason) = 0;
  virtual bool aborted() const = 0;
  // Clears an abort. Only while no member is inside a collective.
  virtual void reset() = 0;
  // The members that have not reached barrier `phase` of their call number `call` (what a
  // WaitObserver is told). Thread-safe.
  // (Into `out`, cleared first: a caller that keeps one buffer allocates only while it grows.)
  virtual void missing(int phase, std::uint64_t call, std::vector<Device>& out) const = 0;
};

class WaitObserver {
 public:
  virtual ~WaitObserver() = default;
  // `group` null: no longer waiting. Otherwise the member waits at barrier `phase` of its call
  // number `call` on `group` (what LocalGroup::missing takes).
  virtual void waiting_in(const LocalGroup* group, const CollectiveDesc* desc, int phase, std::uint64_t call) = 0;
  // Called while the member waits for `missing`; may throw CollectiveError to stop waiting.
  virtual void check_missing(const LocalGroup& group, const CollectiveDesc& desc,
                             const std::vector<Device>& missing) = 0;
};

class GroupCommunicator : public Communicator {
 public:
  virtual void set_timeout(std::chrono::milliseconds timeout) = 0;
  virtual void set_observer(WaitObserver* observer) = 0;
  // This process's members of the group (all members, for a group inside one process).
  virtual LocalGroup& local_group() const = 0;
};

}  // namespace datarax::detail
