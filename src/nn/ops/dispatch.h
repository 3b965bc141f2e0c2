// Helpers every op file shares: dtype dispatch and the checks of op arguments.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "datarax/array.h"
#include "datarax/error.h"

namespace datarax::nn::detail {

// Calls fn(T{}) with T = float or double after the array's dtype.
template <class Fn>
decltype(auto) with_float(DType dtype, std::string_view op, Fn&& fn) {
  if (dtype == DType::f32) return fn(float{});
  if (dtype == DType::f64) return fn(double{});
  throw DTypeError(std::string(op) + ": dtype " + std::string(to_string(dtype)) + "; valid: f32, f64");
}

// A gradient element written (=, the buffer's first contributor: Op::backward_fresh) or added to.
template <bool kWrite, class T>
inline void put(T& d, T v) {
  if constexpr (kWrite)
    d = v;
  else
    d += v;
}
// Runs body.template operator()<true>() when `write`, else <false>(): the loop compiled twice,
// the choice made once outside it.
template <class Body>
inline void store(bool write, Body&& body) {
  if (write)
    body.template operator()<true>();
  else
    body.template operator()<false>();
}

// din (+)= dout, elementwise (same shape): the gradient of an op that passes its input through
// (reshape, the collectives' identity side). A fresh gradient is a copy.
inline void pass_through(std::string_view op, const Array& dout, Array& din, bool fresh) {
  if (fresh) {
    std::memcpy(din.raw(), dout.raw(), dout.nbytes());
    return;
  }
  with_float(dout.dtype(), op, [&](auto t) {
    using T = decltype(t);
    const T* g = dout.data<T>().data();
    T* d = din.data<T>().data();
    for (std::int64_t i = 0, n = dout.numel(); i < n; ++i) d[i] += g[i];
  });
}

// InvalidArgumentError "<op>: <what>".
[[noreturn]] inline void fail(std::string_view op, const std::string& what) {
  throw InvalidArgumentError(std::string(op) + ": " + what);
}

// `axis` (negative counts from the end) as 0..rank-1; refused naming the valid range otherwise.
inline int normalize_axis(std::string_view op, int axis, const Shape& s) {
  if (axis < -s.rank() || axis >= s.rank())
    fail(op, "axis " + std::to_string(axis) + " is out of range for shape " + s.to_string() + "; valid: " +
                 std::to_string(-s.rank()) + ".." + std::to_string(s.rank() - 1));
  return axis < 0 ? axis + s.rank() : axis;
}

// x viewed as [outer, n, inner] around `axis`: what an op along one axis loops over.
struct AxisView {
  std::int64_t outer = 1, n = 1, inner = 1;
};
inline AxisView axis_view(const Shape& s, int axis) {
  AxisView v;
  for (int d = 0; d < s.rank(); ++d) {
    if (d < axis) v.outer *= s[d];
    if (d > axis) v.inner *= s[d];
  }
  v.n = s[axis];
  return v;
}

}  // namespace datarax::nn::detail
