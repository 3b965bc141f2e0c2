// sum and mean ops (ops/reduce.h): x viewed as [outer, n, inner], reduced over n.
#include "datarax/nn/ops/reduce.h"

#include <memory>
#include <vector>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using detail::with_float;

class Reduce final : public Op {
 public:
  Reduce(bool mean, std::int64_t outer, std::int64_t n, std::int64_t inner)
      : mean_(mean), outer_(outer), n_(n), inner_(inner) {}
  std::string_view name() const override { return mean_ ? "mean" : "sum"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      T* y = out.data<T>().data();
      // Sums in double for f32 too: a mean over a large batch keeps f32's precision.
      if (inner_ == 1) {  // a contiguous run per output: 8 partial sums, which vectorize
        for (std::int64_t o = 0; o < outer_; ++o) {
          const T* row = x + o * n_;
          double part[8] = {};
          std::int64_t i = 0;
          for (; i + 8 <= n_; i += 8)
            for (int l = 0; l < 8; ++l) part[l] += static_cast<double>(row[i + l]);
          double v = 0;
          for (; i < n_; ++i) v += static_cast<double>(row[i]);
          for (double p : part) v += p;
          y[o] = static_cast<T>(mean_ ? (n_ > 0 ? v / static_cast<double>(n_) : 0.0) : v);
        }
        return;
      }
      std::vector<double>& acc = acc_;
      acc.assign(static_cast<std::size_t>(inner_), 0.0);  // capacity kept after the first call
      for (std::int64_t o = 0; o < outer_; ++o) {
        for (std::int64_t i = 0; i < n_; ++i) {
          const T* row = x + (o * n_ + i) * inner_;
          for (std::int64_t j = 0; j < inner_; ++j) acc[static_cast<std::size_t>(j)] += row[j];
        }
        for (std::int64_t j = 0; j < inner_; ++j) {
          const double v = acc[static_cast<std::size_t>(j)];
          y[o * inner_ + j] = static_cast<T>(mean_ ? (n_ > 0 ? v / static_cast<double>(n_) : 0.0) : v);
          acc[static_cast<std::size_t>(j)] = 0;
        }
      }
    });
  }

  void backward(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      const T f = mean_ ? (n_ > 0 ? T(1) / static_cast<T>(n_) : T(0)) : T(1);
      for (std::int64_t o = 0; o < outer_; ++o)
        for (std::int64_t i = 0; i < n_; ++i) {
          T* row = dx + (o * n_ + i) * inner_;
          for (std::int64_t j = 0; j < inner_; ++j) row[j] += f * g[o * inner_ + j];
        }
    });
  }

 private:
  bool mean_;
  std::int64_t outer_, n_, inner_;
  std::vector<double> acc_;
};

Var reduce_all(bool mean, Var x) {
  Graph& g = check_operands(mean ? "mean" : "sum", {x});
  return g.apply(std::make_unique<Reduce>(mean, 1, x.shape().numel(), 1), {x}, Shape{}, x.dtype());
}

Var reduce_axis(bool mean, Var x, int axis) {
  const char* what = mean ? "mean" : "sum";
  Graph& g = check_operands(what, {x});
  const Shape& s = x.shape();
  axis = detail::normalize_axis(what, axis, s);
  const detail::AxisView v = detail::axis_view(s, axis);
  std::vector<std::int64_t> dims;
  for (int d = 0; d < s.rank(); ++d)
    if (d != axis) dims.push_back(s[d]);
  return g.apply(std::make_unique<Reduce>(mean, v.outer, v.n, v.inner), {x}, Shape(std::move(dims)), x.dtype());
}

}  // namespace

Var sum(Var x) { return reduce_all(false, x); }
Var mean(Var x) { return reduce_all(true, x); }
Var sum(Var x, int axis) { return reduce_axis(false, x, axis); }
Var mean(Var x, int axis) { return reduce_axis(true, x, axis); }

}  // namespace datarax::nn
