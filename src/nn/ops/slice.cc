// slice, concat and split ops (ops/slice.h). Every tensor is viewed as [outer, n, inner] around
// the axis: a piece is a block of n_k · inner contiguous elements in each of the outer rows.
#include "datarax/nn/ops/slice.h"

#include <cstring>
#include <memory>
#include <string>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using detail::with_float;

// dst[o · dst_row + j] += src[o · src_row + j] for j < len, for each o < outer.
template <class T>
void add_blocks(T* dst, std::int64_t dst_row, const T* src, std::int64_t src_row, std::int64_t outer,
                std::int64_t len) {
  for (std::int64_t o = 0; o < outer; ++o) {
    T* d = dst + o * dst_row;
    const T* s = src + o * src_row;
    for (std::int64_t j = 0; j < len; ++j) d[j] += s[j];
  }
}

// The same with a copy (any dtype: bytes).
void copy_blocks(void* dst, std::int64_t dst_row, const void* src, std::int64_t src_row, std::int64_t outer,
                 std::int64_t len, std::size_t itemsize) {
  for (std::int64_t o = 0; o < outer; ++o)
    std::memcpy(static_cast<unsigned char*>(dst) + static_cast<std::size_t>(o * dst_row) * itemsize,
                static_cast<const unsigned char*>(src) + static_cast<std::size_t>(o * src_row) * itemsize,
                static_cast<std::size_t>(len) * itemsize);
}

// out [outer, stop - start, inner] = x [outer, start:stop, inner]
class Slice final : public Op {
 public:
  Slice(detail::AxisView v, std::int64_t start, std::int64_t stop) : v_(v), start_(start), len_(stop - start) {}
  std::string_view name() const override { return "slice"; }
  void forward(std::span<const Array> in, Array& out) override {
    const std::size_t item = out.itemsize();
    copy_blocks(out.raw(), len_ * v_.inner,
                static_cast<const unsigned char*>(in[0].raw()) + static_cast<std::size_t>(start_ * v_.inner) * item,
                v_.n * v_.inner, v_.outer, len_ * v_.inner, item);
  }
  void backward(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      add_blocks(din[0]->data<T>().data() + start_ * v_.inner, v_.n * v_.inner, dout.data<T>().data(),
                 len_ * v_.inner, v_.outer, len_ * v_.inner);
    });
  }

 private:
  detail::AxisView v_;  // of x
  std::int64_t start_, len_;
};

// out [outer, Σ n_k, inner] = the inputs [outer, n_k, inner] one after another.
class Concat final : public Op {
 public:
  Concat(std::int64_t outer, std::int64_t inner, std::vector<std::int64_t> extents)
      : outer_(outer), inner_(inner), extents_(std::move(extents)) {
    for (std::int64_t n : extents_) total_ += n;
  }
  std::string_view name() const override { return "concat"; }
  void forward(std::span<const Array> in, Array& out) override {
    const std::size_t item = out.itemsize();
    std::int64_t at = 0;
    for (std::size_t k = 0; k < in.size(); ++k) {
      copy_blocks(static_cast<unsigned char*>(out.raw()) + static_cast<std::size_t>(at * inner_) * item,
                  total_ * inner_, in[k].raw(), extents_[k] * inner_, outer_, extents_[k] * inner_, item);
      at += extents_[k];
    }
  }
  void backward(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din) override {
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      std::int64_t at = 0;
      for (std::size_t k = 0; k < din.size(); ++k) {
        if (din[k] != nullptr)
          add_blocks(din[k]->data<T>().data(), extents_[k] * inner_, dout.data<T>().data() + at * inner_,
                     total_ * inner_, outer_, extents_[k] * inner_);
        at += extents_[k];
      }
    });
  }

 private:
  std::int64_t outer_, inner_, total_ = 0;
  std::vector<std::int64_t> extents_;
};

}  // namespace

Var slice(Var x, int axis, std::int64_t start, std::int64_t stop) {
  constexpr std::string_view what = "slice";
  Graph& g = check_operands(what, {x});
  if (x.rank() < 1) detail::fail(what, "the input is a scalar; it needs at least 1 dimension");
  axis = detail::normalize_axis(what, axis, x.shape());
  const std::int64_t n = x.shape()[axis];
  if (start < 0 || stop < start || stop > n)
    detail::fail(what, "range " + std::to_string(start) + ":" + std::to_string(stop) + " along axis " +
                           std::to_string(axis) + " of " + x.shape().to_string() + "; valid: 0 <= start <= stop <= " +
                           std::to_string(n));
  std::vector<std::int64_t> dims = x.shape().dims();
  dims[static_cast<std::size_t>(axis)] = stop - start;
  return g.apply(std::make_unique<Slice>(detail::axis_view(x.shape(), axis), start, stop), {x}, Shape(std::move(dims)),
                 x.dtype());
}

Var concat(std::span<const Var> xs, int axis) {
  constexpr std::string_view what = "concat";
  if (xs.empty()) detail::fail(what, "no inputs; it needs at least 1");
  Graph& g = check_operands(what, {xs[0]});
  const Shape& s0 = xs[0].shape();
  if (s0.rank() < 1) detail::fail(what, "input 0 is a scalar; inputs need at least 1 dimension");
  axis = detail::normalize_axis(what, axis, s0);
  std::vector<std::int64_t> extents;
  std::vector<std::int64_t> dims = s0.dims();
  dims[static_cast<std::size_t>(axis)] = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (!xs[k].valid()) detail::fail(what, "input " + std::to_string(k) + " is an empty Var (default-constructed)");
    check_operands(what, {xs[0], xs[k]});
    const Shape& s = xs[k].shape();
    bool same = s.rank() == s0.rank();
    for (int d = 0; same && d < s.rank(); ++d) same = d == axis || s[d] == s0[d];
    if (!same)
      detail::fail(what, "input " + std::to_string(k) + " has shape " + s.to_string() + ", input 0 " + s0.to_string() +
                             "; all extents but axis " + std::to_string(axis) + "'s must agree");
    extents.push_back(s[axis]);
    dims[static_cast<std::size_t>(axis)] += s[axis];
  }
  const detail::AxisView v = detail::axis_view(s0, axis);
  return g.apply(std::make_unique<Concat>(v.outer, v.inner, std::move(extents)), xs, Shape(std::move(dims)),
                 xs[0].dtype());
}

std::vector<Var> split(Var x, int axis, std::span<const std::int64_t> sizes) {
  constexpr std::string_view what = "split";
  check_operands(what, {x});
  if (x.rank() < 1) detail::fail(what, "the input is a scalar; it needs at least 1 dimension");
  axis = detail::normalize_axis(what, axis, x.shape());
  std::int64_t total = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    if (sizes[k] < 0) detail::fail(what, "size " + std::to_string(sizes[k]) + " of piece " + std::to_string(k) + "; sizes are >= 0");
    total += sizes[k];
  }
  if (total != x.shape()[axis])
    detail::fail(what, "sizes add up to " + std::to_string(total) + "; axis " + std::to_string(axis) + " of " +
                           x.shape().to_string() + " has " + std::to_string(x.shape()[axis]));
  std::vector<Var> pieces;
  std::int64_t at = 0;
  for (std::int64_t n : sizes) {
    pieces.push_back(slice(x, axis, at, at + n));
    at += n;
  }
  return pieces;
}

}  // namespace datarax::nn
