#include "datarax/communicator.h"

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <string_view>
#include <set>

#include "core/strings.h"

namespace datarax {

std::chrono::milliseconds default_collective_timeout() {
  if (const char* env = std::getenv("DATARAX_COLLECTIVE_TIMEOUT_S"); env != nullptr) {
    // Decimal only: strtod would also read hex ("0x10"), "inf", "nan" and leading spaces.
    const std::string_view text(env);
    double s = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), s, std::chars_format::general);
    if (text.empty() || text.find_first_not_of("0123456789.eE+-") != std::string_view::npos || ec != std::errc() ||
        ptr != text.data() + text.size() || !(s > 0) || s > 1e7)
      throw InvalidArgumentError("DATARAX_COLLECTIVE_TIMEOUT_S: \"" + std::string(env) +
                                 "\" is not a timeout; valid: seconds above 0 and up to 1e7 (115 days), e.g. 300 or 0.5");
    return std::chrono::milliseconds(static_cast<long long>(s * 1000.0 + 0.5));
  }
  return std::chrono::seconds(300);
}

namespace {
std::atomic<CollectiveObserver*> g_observer{nullptr};
}  // namespace

CollectiveObserver* set_collective_observer(CollectiveObserver* observer) {
  return g_observer.exchange(observer, std::memory_order_acq_rel);
}

void Communicator::run_checked(CollectiveDesc desc, std::size_t out_count) {
  if (desc.label.empty()) desc.label = datarax::to_string(desc.kind);
  const int n = size();
  const auto count = desc.count;
  auto fail = [&](const std::string& what) { throw InvalidArgumentError(std::string(desc.label) + ": " + what); };
  if (desc.op == ReduceOp::mean && !is_floating(desc.dtype) &&
      (desc.kind == CollectiveKind::all_reduce || desc.kind == CollectiveKind::reduce_scatter))
    fail("mean of " + std::string(datarax::to_string(desc.dtype)) +
         " values is not defined here; use sum (or convert to a float dtype first)");
  const std::size_t item = byte_size(desc.dtype);
  auto overlaps = [&](std::size_t in_bytes, std::size_t out_bytes) {
    const auto* a = static_cast<const std::byte*>(desc.in);
    const auto* b = static_cast<const std::byte*>(desc.out);
    return in_bytes > 0 && out_bytes > 0 && a < b + out_bytes && b < a + in_bytes;
  };
  const std::size_t in_bytes = static_cast<std::size_t>(count) * item;
  switch (desc.kind) {
    case CollectiveKind::all_reduce:
    case CollectiveKind::broadcast:
      if (out_count != static_cast<std::size_t>(count))
        fail("output has " + std::to_string(out_count) + " elements, input " + std::to_string(count) +
             "; they must be equal");
      if (desc.kind == CollectiveKind::broadcast && (desc.root < 0 || desc.root >= n))
        fail("invalid root " + std::to_string(desc.root) + " (root should be in the 0.." +
             std::to_string(n - 1) + " range)");
      break;
    case CollectiveKind::all_gather:
      if (out_count != static_cast<std::size_t>(count) * static_cast<std::size_t>(n))
        fail("output has " + std::to_string(out_count) + " elements; all_gather of " +
             std::to_string(count) + " over " + std::to_string(n) + " members needs " +
             std::to_string(count * n));
      // In place is allowed: the input may be exactly this member's block of the output.
      if (overlaps(in_bytes, out_count * item) &&
          static_cast<const std::byte*>(desc.in) !=
              static_cast<const std::byte*>(desc.out) + static_cast<std::size_t>(rank()) * in_bytes)
        fail("output overlaps input other than as this member's block (in place); use separate buffers");
      break;
    case CollectiveKind::reduce_scatter:
    case CollectiveKind::all_to_all: {
      if (count % n != 0)
        fail("input of " + std::to_string(count) + " elements does not split into " +
             std::to_string(n) + " equal blocks");
      const std::size_t want = desc.kind == CollectiveKind::reduce_scatter
                                   ? static_cast<std::size_t>(count / n)
                                   : static_cast<std::size_t>(count);
      if (out_count != want)
        fail("output has " + std::to_string(out_count) + " elements; expected " + std::to_string(want));
      if (overlaps(in_bytes, out_count * item)) fail("output overlaps input; use separate buffers");
      break;
    }
    case CollectiveKind::permute: {
      if (out_count != static_cast<std::size_t>(count))
        fail("output has " + std::to_string(out_count) + " elements, input " + std::to_string(count));
      if (static_cast<int>(desc.send_to.size()) != n)
        fail("send_to has " + std::to_string(desc.send_to.size()) + " entries; the group has " +
             std::to_string(n) + " members");
      std::set<int> targets;
      for (int t : desc.send_to) {
        if (t < -1 || t >= n)
          fail("send_to names rank " + std::to_string(t) + " (valid: 0.." + std::to_string(n - 1) +
               ", or -1 for none)");
        if (t >= 0 && !targets.insert(t).second) fail("send_to names rank " + std::to_string(t) + " twice");
      }
      if (overlaps(in_bytes, out_count * item)) fail("output overlaps input; use separate buffers");
      break;
    }
    case CollectiveKind::barrier:
      break;
  }
  if (CollectiveObserver* observer = g_observer.load(std::memory_order_acquire)) observer->on_collective(*this, desc);
  run(desc);
}

namespace {
template <class Fn>
void with_type(const Array& a, Fn&& fn) {
  visit_dtype(a.dtype(), [&](auto t) { fn(t); });
}
}  // namespace

void Communicator::all_reduce(Array& data, ReduceOp op, std::string_view label) {
  with_type(data, [&](auto t) { all_reduce(data.data<decltype(t)>(), op, label); });
}

void Communicator::all_gather(const Array& in, Array& out, std::string_view label) {
  with_type(in, [&](auto t) {
    using T = decltype(t);
    all_gather<T>(in.data<T>(), out.data<T>(), label);
  });
}

void Communicator::reduce_scatter(const Array& in, Array& out, ReduceOp op, std::string_view label) {
  with_type(in, [&](auto t) {
    using T = decltype(t);
    reduce_scatter<T>(in.data<T>(), out.data<T>(), op, label);
  });
}

void Communicator::broadcast(Array& data, int root, std::string_view label) {
  with_type(data, [&](auto t) { broadcast(data.data<decltype(t)>(), root, label); });
}

}  // namespace datarax
