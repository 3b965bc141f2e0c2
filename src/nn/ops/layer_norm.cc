// layer_norm op (ops/layer_norm.h): llm.c's formulas, per row of C elements.
//   forward:  n = (x − mean) · rstd;  y = n · w + b
//   backward: dn = w · dy;  dx += (dn − mean(dn) − n · mean(dn · n)) · rstd;  dw += n · dy;  db += dy
#include "datarax/nn/ops/layer_norm.h"

#include <cmath>
#include <memory>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using detail::with_float;

class LayerNormOp final : public Op {
 public:
  LayerNormOp(std::int64_t rows, std::int64_t C, double eps, DType dtype)
      : rows_(rows), C_(C), eps_(eps), mean_(Array::empty({rows}, dtype)), rstd_(Array::empty({rows}, dtype)) {}
  std::string_view name() const override { return "layer_norm"; }

  // x [rows, C], w [C], b [C] -> y [rows, C]
  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* w = in[1].data<T>().data();
      const T* b = in[2].data<T>().data();
      T* mean = mean_.data<T>().data();
      T* rstd = rstd_.data<T>().data();
      for (std::int64_t r = 0; r < rows_; ++r) {
        const T* x = in[0].data<T>().data() + r * C_;
        T* y = out.data<T>().data() + r * C_;
        T m = 0;
        for (std::int64_t c = 0; c < C_; ++c) m += x[c];
        m /= static_cast<T>(C_);
        T v = 0;
        for (std::int64_t c = 0; c < C_; ++c) v += (x[c] - m) * (x[c] - m);
        v /= static_cast<T>(C_);
        const T s = T(1) / std::sqrt(v + static_cast<T>(eps_));
        for (std::int64_t c = 0; c < C_; ++c) y[c] = (x[c] - m) * s * w[c] + b[c];
        mean[r] = m;
        rstd[r] = s;
      }
    });
  }

  void backward(std::span<const Array> in, const Array&, const Array& dout, std::span<Array* const> din) override {
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* w = in[1].data<T>().data();
      const T* mean = mean_.data<T>().data();
      const T* rstd = rstd_.data<T>().data();
      T* dw = din[1] ? din[1]->data<T>().data() : nullptr;
      T* db = din[2] ? din[2]->data<T>().data() : nullptr;
      const T inv_c = T(1) / static_cast<T>(C_);
      for (std::int64_t r = 0; r < rows_; ++r) {
        const T* x = in[0].data<T>().data() + r * C_;
        const T* dy = dout.data<T>().data() + r * C_;
        const T m = mean[r], s = rstd[r];
        if (din[0]) {
          T dn_mean = 0, dn_n_mean = 0;
          for (std::int64_t c = 0; c < C_; ++c) {
            const T dn = w[c] * dy[c];
            dn_mean += dn;
            dn_n_mean += dn * (x[c] - m) * s;
          }
          dn_mean *= inv_c;
          dn_n_mean *= inv_c;
          T* dx = din[0]->data<T>().data() + r * C_;
          for (std::int64_t c = 0; c < C_; ++c) {
            const T n = (x[c] - m) * s;
            dx[c] += (w[c] * dy[c] - dn_mean - n * dn_n_mean) * s;
          }
        }
        if (dw)
          for (std::int64_t c = 0; c < C_; ++c) dw[c] += (x[c] - m) * s * dy[c];
        if (db)
          for (std::int64_t c = 0; c < C_; ++c) db[c] += dy[c];
      }
    });
  }

 private:
  std::int64_t rows_, C_;
  double eps_;
  Array mean_, rstd_;  // [rows]: saved by forward for backward
};

}  // namespace

Var layer_norm(Var x, Var scale, Var bias, double eps) {
  constexpr std::string_view what = "layer_norm";
  Graph& g = check_operands(what, {x, scale, bias});
  if (x.rank() < 1) detail::fail(what, "the input is a scalar; it needs a feature dimension [..., C]");
  const std::int64_t C = x.shape()[x.rank() - 1];
  if (scale.shape() != Shape{C})
    detail::fail(what, "scale has shape " + scale.shape().to_string() + "; the input " + x.shape().to_string() +
                           " needs [" + std::to_string(C) + "]");
  if (bias.shape() != Shape{C})
    detail::fail(what, "bias has shape " + bias.shape().to_string() + "; the input " + x.shape().to_string() +
                           " needs [" + std::to_string(C) + "]");
  if (!(eps > 0) || !std::isfinite(eps))
    detail::fail(what, "eps " + std::to_string(eps) + "; valid: > 0 and finite");
  const std::int64_t rows = C > 0 ? x.shape().numel() / C : 0;
  return g.apply(std::make_unique<LayerNormOp>(rows, C, eps, x.dtype()), {x, scale, bias}, x.shape(), x.dtype());
}

}  // namespace datarax::nn
