// softmax and log_softmax ops (ops/softmax.h). x is viewed as [outer, n, inner] around the axis;
// each (outer, inner) pair is one distribution over n, elements inner apart. The backward uses
// only the output y (llm.c style):
//   softmax:     dx = y ⊙ (dy − Σ dy ⊙ y)
//   log_softmax: dx = dy − exp(y) · Σ dy
#include "datarax/nn/ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using detail::with_float;

class Softmax final : public Op {
 public:
  Softmax(bool log, detail::AxisView v) : log_(log), v_(v) {}
  std::string_view name() const override { return log_ ? "log_softmax" : "softmax"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      T* y = out.data<T>().data();
      const std::int64_t n = v_.n, s = v_.inner;
      for (std::int64_t o = 0; o < v_.outer; ++o)
        for (std::int64_t i = 0; i < s; ++i) {
          const T* xr = x + o * n * s + i;
          T* yr = y + o * n * s + i;
          T mx = -std::numeric_limits<T>::infinity();
          for (std::int64_t j = 0; j < n; ++j) mx = std::max(mx, xr[j * s]);
          T total = 0;
          for (std::int64_t j = 0; j < n; ++j) {
            const T e = std::exp(xr[j * s] - mx);
            total += e;
            if (!log_) yr[j * s] = e;
          }
          if (log_) {
            const T shift = mx + std::log(total);
            for (std::int64_t j = 0; j < n; ++j) yr[j * s] = xr[j * s] - shift;
          } else {
            const T inv = T(1) / total;
            for (std::int64_t j = 0; j < n; ++j) yr[j * s] *= inv;
          }
        }
    });
  }

  void backward(std::span<const Array>, const Array& out, const Array& dout, std::span<Array* const> din) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* y = out.data<T>().data();
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      const std::int64_t n = v_.n, s = v_.inner;
      for (std::int64_t o = 0; o < v_.outer; ++o)
        for (std::int64_t i = 0; i < s; ++i) {
          const std::int64_t base = o * n * s + i;
          T acc = 0;
          if (log_) {
            for (std::int64_t j = 0; j < n; ++j) acc += g[base + j * s];
            for (std::int64_t j = 0; j < n; ++j) dx[base + j * s] += g[base + j * s] - std::exp(y[base + j * s]) * acc;
          } else {
            for (std::int64_t j = 0; j < n; ++j) acc += g[base + j * s] * y[base + j * s];
            for (std::int64_t j = 0; j < n; ++j) dx[base + j * s] += y[base + j * s] * (g[base + j * s] - acc);
          }
        }
    });
  }

 private:
  bool log_;
  detail::AxisView v_;
};

Var apply_softmax(bool log, Var x, int axis) {
  const char* what = log ? "log_softmax" : "softmax";
  Graph& g = check_operands(what, {x});
  if (x.rank() < 1) detail::fail(what, "the input is a scalar; it needs at least 1 dimension");
  axis = detail::normalize_axis(what, axis, x.shape());
  return g.apply(std::make_unique<Softmax>(log, detail::axis_view(x.shape(), axis)), {x}, x.shape(), x.dtype());
}

}  // namespace

Var softmax(Var x, int axis) { return apply_softmax(false, x, axis); }
Var log_softmax(Var x, int axis) { return apply_softmax(true, x, axis); }

}  // namespace datarax::nn
