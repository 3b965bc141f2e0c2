// Communicator: one member's handle on a group of devices that run collectives together.
//
// Inside an SPMD function, datarax::communicator(axes) (collectives.h) gives the current device's
// communicator over mesh axes: collectives on typed spans of the caller's own buffers, where the
// named-axis functions (psum, all_gather, ...) take Arrays and Trees.
//
// A group has ranks 0..size()-1; every member calls the same collectives in the same order with
// matching arguments (same kind, op, dtype and counts). Calls block until the whole group has
// taken part; every wait has a deadline (SpmdOptions::timeout, DATARAX_COLLECTIVE_TIMEOUT_S), and a
// group member that fails aborts the group so that nobody waits for it (CollectiveError). Mismatched
// calls (a different kind, op, dtype or count at the same step) throw MismatchError on every
// member, naming both sides.
//
// Results are deterministic: reductions combine the members' values in rank order.
// Buffers: `in` and `out` may be the same span (in place) unless a method says otherwise; the
// caller keeps ownership, and the buffers must stay valid until the call returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "datarax/array.h"
#include "datarax/device.h"
#include "datarax/dtype.h"
#include "datarax/error.h"
#include "datarax/reduce_op.h"

namespace datarax {

enum class CollectiveKind : unsigned char {
  all_reduce, all_gather, reduce_scatter, broadcast, all_to_all, permute, barrier
};
std::string_view to_string(CollectiveKind kind);

// What one member asks of a collective: the one descriptor every public call fills in and hands to
// Communicator::run, where it is checked against the other members' descriptors.
struct CollectiveDesc {
  CollectiveKind kind = CollectiveKind::barrier;
  ReduceOp op = ReduceOp::sum;
  DType dtype = DType::f32;
  std::int64_t count = 0;       // elements of `in` (per member)
  const void* in = nullptr;
  void* out = nullptr;          // elements: count (all_reduce, broadcast, all_to_all, permute),
                                // count * size (all_gather), count / size (reduce_scatter)
  int root = 0;                 // broadcast
  std::vector<int> send_to;     // permute: send_to[r] = rank that rank r sends to, or -1
  std::string_view label;       // names the operation for messages ("psum over axis \"data\""); the
                                // text must outlive the call

  std::string to_string() const;  // "all_reduce(sum, f32[1000])"
};

// Default deadline for every wait in a collective: 300 s, or DATARAX_COLLECTIVE_TIMEOUT_S.
std::chrono::milliseconds default_collective_timeout();

class Communicator;

// Sees every collective this process's devices start, for tests and profilers (how many
// collectives a training step makes, and of what). Installed for the whole process with
// set_collective_observer; called on the calling device's thread, after the call's arguments were
// checked and before it runs, with the member's communicator and its descriptor (desc.label names
// the operation, e.g. "psum over axis \"data\""). Called from several threads at once: it must be
// thread-safe, and it must not throw.
class CollectiveObserver {
 public:
  virtual ~CollectiveObserver() = default;
  virtual void on_collective(const Communicator& comm, const CollectiveDesc& desc) = 0;
};

// Installs `observer` (null: none) and returns the one it replaces. Not for use while collectives
// run: install before the SPMD code starts, remove after it ends.
CollectiveObserver* set_collective_observer(CollectiveObserver* observer);

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The group's devices, by rank.
  virtual const std::vector<Device>& devices() const = 0;

  template <class T>
  void all_reduce(std::span<const T> in, std::span<T> out, ReduceOp op, std::string_view label = {}) {
    run_checked(make(CollectiveKind::all_reduce, op, in, out, label), out.size());
  }
  template <class T>
  void all_reduce(std::span<T> data, ReduceOp op, std::string_view label = {}) {
    all_reduce<T>(std::span<const T>(data), data, op, label);
  }
  // out[r * count .. (r+1) * count) = member r's in. `in` may be this member's own block of `out`
  // (in place); otherwise they must not overlap.
  template <class T>
  void all_gather(std::span<const T> in, std::span<T> out, std::string_view label = {}) {
    run_checked(make(CollectiveKind::all_gather, ReduceOp::sum, in, out, label), out.size());
  }
  // out = slice `rank` (count / size elements) of the reduction of every member's in.
  template <class T>
  void reduce_scatter(std::span<const T> in, std::span<T> out, ReduceOp op, std::string_view label = {}) {
    run_checked(make(CollectiveKind::reduce_scatter, op, in, out, label), out.size());
  }
  // Every member's data becomes root's.
  template <class T>
  void broadcast(std::span<T> data, int root, std::string_view label = {}) {
    CollectiveDesc d = make(CollectiveKind::broadcast, ReduceOp::sum, std::span<const T>(data), data,
                            label);
    d.root = root;
    run_checked(std::move(d), data.size());
  }
  // in and out hold `size` blocks of count / size elements: out block j = member j's in block
  // `rank`. `out` must not overlap `in`.
  template <class T>
  void all_to_all(std::span<const T> in, std::span<T> out, std::string_view label = {}) {
    run_checked(make(CollectiveKind::all_to_all, ReduceOp::sum, in, out, label), out.size());
  }
  // Member r's in goes to member send_to[r]'s out; a member nobody sends to gets zeros.
  // send_to must be the same on every member, with no rank targeted twice.
  template <class T>
  void permute(std::span<const T> in, std::span<T> out, const std::vector<int>& send_to,
               std::string_view label = {}) {
    CollectiveDesc d = make(CollectiveKind::permute, ReduceOp::sum, in, out, label);
    d.send_to = send_to;
    run_checked(std::move(d), out.size());
  }
  void barrier(std::string_view label = {}) {
    CollectiveDesc d;
    d.label = label;
    run_checked(std::move(d), 0);
  }

  // Arrays: dtype and element counts come from the arrays.
  void all_reduce(Array& data, ReduceOp op, std::string_view label = {});
  void all_gather(const Array& in, Array& out, std::string_view label = {});
  void reduce_scatter(const Array& in, Array& out, ReduceOp op, std::string_view label = {});
  void broadcast(Array& data, int root, std::string_view label = {});

  // The one entry point every collective goes through. Checks the descriptor (counts that fit,
  // root in range) and hands it to the backend.
  void run_checked(CollectiveDesc desc, std::size_t out_count);

 protected:
  virtual void run(const CollectiveDesc& desc) = 0;

 private:
  template <class T>
  static CollectiveDesc make(CollectiveKind kind, ReduceOp op, std::span<const T> in, std::span<T> out,
                             std::string_view label) {
    CollectiveDesc d;
    d.kind = kind;
    d.op = op;
    d.dtype = dtype_v<T>;
    d.count = static_cast<std::int64_t>(in.size());
    d.in = in.data();
    d.out = out.data();
    d.label = label;
    return d;
  }
};

}  // namespace datarax
