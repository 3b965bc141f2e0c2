// Records the collectives one device starts (tests of how many collectives a step makes, and of
// what): installed for the process with set_collective_observer.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "datarax/communicator.h"

namespace datarax::test {

class CollectiveLog final : public CollectiveObserver {
 public:
  struct Call {
    CollectiveKind kind;
    ReduceOp op;
    DType dtype;
    std::int64_t count;
    int group = 0;  // the communicator's size (0: not compared)
    friend bool operator==(const Call& a, const Call& b) {
      return a.kind == b.kind && a.op == b.op && a.dtype == b.dtype && a.count == b.count &&
             (a.group == 0 || b.group == 0 || a.group == b.group);
    }
  };
  explicit CollectiveLog(int device_id = 0) : device_(device_id) {}
  void on_collective(const Communicator& comm, const CollectiveDesc& d) override {
    if (comm.devices()[static_cast<std::size_t>(comm.rank())].id != device_) return;
    std::lock_guard lock(mu_);
    calls.push_back({d.kind, d.op, d.dtype, d.count, comm.size()});
  }
  std::vector<Call> calls;

 private:
  int device_;
  std::mutex mu_;
};

// The collectives device 0 starts while f runs.
template <class F>
std::vector<CollectiveLog::Call> collectives_of(F&& f) {
  CollectiveLog log;
  set_collective_observer(&log);
  try {
    f();
  } catch (...) {
    set_collective_observer(nullptr);
    throw;
  }
  set_collective_observer(nullptr);
  return log.calls;
}

}  // namespace datarax::test
