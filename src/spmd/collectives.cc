#include "datarax/collectives.h"

#include "core/strings.h"
#include "datarax/communicator.h"
#include "spmd/context.h"

namespace datarax {

std::string AxisNames::to_string() const {
  if (size_ == 1) return "axis " + detail::quoted(names_[0]);
  return "axes (" + detail::join(names(), ", ", [](std::string_view n) { return std::string(n); }) + ")";
}

namespace {

struct Call {
  Communicator& comm;
  std::string_view label;  // cached in the device's context: no allocation per call
};

Call begin(const char* op, const AxisNames& axes) {
  detail::DeviceContext& ctx = detail::require_context(op);
  detail::DeviceContext::CommEntry& entry = detail::communicator_for(ctx, axes, op);
  return {*entry.comm, entry.label(op)};
}

Array reduce(const Array& x, const AxisNames& axes, ReduceOp op, const char* name) {
  Call c = begin(name, axes);
  // Integers have no exact mean: their pmean is computed in f64.
  Array out = op == ReduceOp::mean && !is_floating(x.dtype()) ? x.astype(DType::f64) : x.copy();
  c.comm.all_reduce(out, op, c.label);
  return out;
}

template <class Fn>
Tree per_leaf(const Tree& x, Fn&& fn) {
  return x.map([&](const Array& leaf) { return fn(leaf); });
}

}  // namespace

Array psum(const Array& x, const AxisNames& axes) { return reduce(x, axes, ReduceOp::sum, "psum"); }
Array pmean(const Array& x, const AxisNames& axes) { return reduce(x, axes, ReduceOp::mean, "pmean"); }
Array pmax(const Array& x, const AxisNames& axes) { return reduce(x, axes, ReduceOp::max, "pmax"); }
Array pmin(const Array& x, const AxisNames& axes) { return reduce(x, axes, ReduceOp::min, "pmin"); }
Tree psum(const Tree& x, const AxisNames& axes) { return per_leaf(x, [&](const Array& a) { return psum(a, axes); }); }
Tree pmean(const Tree& x, const AxisNames& axes) { return per_leaf(x, [&](const Array& a) { return pmean(a, axes); }); }
Tree pmax(const Tree& x, const AxisNames& axes) { return per_leaf(x, [&](const Array& a) { return pmax(a, axes); }); }
Tree pmin(const Tree& x, const AxisNames& axes) { return per_leaf(x, [&](const Array& a) { return pmin(a, axes); }); }

void all_reduce_in_place(Array& x, ReduceOp op, const AxisNames& axes) {
  Call c = begin("all_reduce_in_place", axes);
  c.comm.all_reduce(x, op, c.label);
}

void all_reduce_in_place(Tree& x, ReduceOp op, const AxisNames& axes) {
  for (auto& [key, leaf] : x) all_reduce_in_place(leaf, op, axes);
}

void reduce_scatter_into(const Array& x, Array& out, ReduceOp op, const AxisNames& axes) {
  Call c = begin("reduce_scatter_into", axes);
  c.comm.reduce_scatter(x, out, op, c.label);
}

void all_gather_into(const Array& x, Array& out, const AxisNames& axes) {
  Call c = begin("all_gather_into", axes);
  c.comm.all_gather(x, out, c.label);
}

Array all_gather(const Array& x, const AxisNames& axes, bool tiled) {
  Call c = begin("all_gather", axes);
  const int n = c.comm.size();
  std::vector<std::int64_t> dims = x.shape().dims();
  if (tiled) {
    if (dims.empty())
      throw InvalidArgumentError(std::string(c.label) + ": tiled gathering needs a leading axis; the value is 0-d");
    dims[0] *= n;
  } else {
    dims.insert(dims.begin(), n);
  }
  Array out = Array::empty(Shape(std::move(dims)), x.dtype(), x.device());
  c.comm.all_gather(x, out, c.label);
  return out;
}

Tree all_gather(const Tree& x, const AxisNames& axes, bool tiled) {
  return per_leaf(x, [&](const Array& a) { return all_gather(a, axes, tiled); });
}

Array psum_scatter(const Array& x, const AxisNames& axes, bool tiled) {
  Call c = begin("psum_scatter", axes);
  const int n = c.comm.size();
  if (x.rank() == 0 || (tiled ? x.shape()[0] % n != 0 : x.shape()[0] != n))
    throw InvalidArgumentError(std::string(c.label) + ": the leading axis of " + x.shape().to_string() +
                               (tiled ? " must be divisible by " : " must equal ") +
                               "the group size " + std::to_string(n));
  Shape shape = tiled ? x.shape().with_leading(x.shape()[0] / n)
                      : Shape(std::vector<std::int64_t>(x.shape().dims().begin() + 1, x.shape().dims().end()));
  Array out = Array::empty(std::move(shape), x.dtype(), x.device());
  c.comm.reduce_scatter(x, out, ReduceOp::sum, c.label);
  return out;
}

Array ppermute(const Array& x, const AxisNames& axes, const std::vector<std::pair<int, int>>& perm) {
  Call c = begin("ppermute", axes);
  const int n = c.comm.size();
  std::vector<int> send_to(static_cast<std::size_t>(n), -1);
  for (const auto& [src, dst] : perm) {
    if (src < 0 || src >= n || dst < 0 || dst >= n)
      throw InvalidArgumentError(std::string(c.label) + ": pair (" + std::to_string(src) + ", " + std::to_string(dst) +
                                 ") names a rank outside 0.." + std::to_string(n - 1));
    if (send_to[static_cast<std::size_t>(src)] != -1)
      throw InvalidArgumentError(std::string(c.label) + ": rank " + std::to_string(src) + " is a source twice");
    send_to[static_cast<std::size_t>(src)] = dst;
  }
  Array out = Array::empty(x.shape(), x.dtype(), x.device());
  visit_dtype(x.dtype(), [&](auto t) {
    using T = decltype(t);
    c.comm.permute<T>(x.data<T>(), out.data<T>(), send_to, c.label);
  });
  return out;
}

Array all_to_all(const Array& x, const AxisNames& axes) {
  Call c = begin("all_to_all", axes);
  const int n = c.comm.size();
  if (x.rank() == 0 || x.shape()[0] % n != 0)
    throw InvalidArgumentError(std::string(c.label) + ": the leading axis of " + x.shape().to_string() +
                               " must split into " + std::to_string(n) + " equal blocks");
  Array out = Array::empty(x.shape(), x.dtype(), x.device());
  visit_dtype(x.dtype(), [&](auto t) {
    using T = decltype(t);
    c.comm.all_to_all<T>(x.data<T>(), out.data<T>(), c.label);
  });
  return out;
}

Tree psum_scatter(const Tree& x, const AxisNames& axes, bool tiled) {
  return per_leaf(x, [&](const Array& a) { return psum_scatter(a, axes, tiled); });
}
Tree ppermute(const Tree& x, const AxisNames& axes, const std::vector<std::pair<int, int>>& perm) {
  return per_leaf(x, [&](const Array& a) { return ppermute(a, axes, perm); });
}
Tree all_to_all(const Tree& x, const AxisNames& axes) {
  return per_leaf(x, [&](const Array& a) { return all_to_all(a, axes); });
}

Communicator& communicator(const AxisNames& axes) { return begin("communicator", axes).comm; }

int axis_index(const AxisNames& axes) { return begin("axis_index", axes).comm.rank(); }
int axis_size(const AxisNames& axes) { return begin("axis_size", axes).comm.size(); }

void barrier(const AxisNames& axes) {
  Call c = begin("barrier", axes);
  c.comm.barrier(c.label);
}

}  // namespace datarax
