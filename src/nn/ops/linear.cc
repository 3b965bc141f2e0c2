// matmul and linear ops (ops/linear.h).
#include "datarax/nn/ops/linear.h"

#include <memory>
#include <vector>

#include "datarax/nn/matmul.h"
#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using detail::with_float;

std::int64_t ld(std::int64_t width) { return width > 0 ? width : 1; }

// y [M, N] = x [M, K] · w [K, N] (+ bias [N] when the op has three inputs), then max(y, 0) when
// fused with a ReLU.
class Linear final : public FreshOp {
 public:
  Linear(bool has_bias, bool relu, std::int64_t M, std::int64_t K, std::int64_t N)
      : has_bias_(has_bias), relu_(relu), M_(M), K_(K), N_(N) {}
  std::string_view name() const override { return relu_ ? "linear_relu" : has_bias_ ? "linear" : "matmul"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      T* y = out.data<T>().data();
      T beta = 0;
      if (has_bias_) {
        const T* b = in[2].data<T>().data();
        for (std::int64_t r = 0; r < M_; ++r)
          for (std::int64_t j = 0; j < N_; ++j) y[r * N_ + j] = b[j];
        beta = 1;
      }
      matmul(false, false, M_, N_, K_, T(1), in[0].data<T>().data(), ld(K_), in[1].data<T>().data(), ld(N_), beta, y, ld(N_));
      if (relu_) clamp(y, M_ * N_);
    });
  }

  // A fresh gradient is written by the product itself (beta 0): no zeroes, no read of C.
  void backward_fresh(std::span<const Array> in, const Array& out, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* g = dout.data<T>().data();
      T* db = has_bias_ && din[2] != nullptr ? din[2]->data<T>().data() : nullptr;
      bool bias_done = false;
      if (relu_) {  // the gradient through the ReLU, where its output is positive (0 at the kink)
        if (masked_.numel() != dout.numel()) masked_ = Array::empty(dout.shape(), dout.dtype());  // once
        // One pass: the masked gradient and, when wanted, the bias's (its column sums).
        mask_rows<T>(out.data<T>().data(), g, masked_.data<T>().data(), db, db != nullptr && !fresh[2]);
        g = masked_.data<T>().data();
        bias_done = true;
      }
      if (din[0] != nullptr)  // dx [M, K] (+)= dout [M, N] · wᵀ
        matmul(false, true, M_, K_, N_, T(1), g, ld(N_), in[1].data<T>().data(), ld(N_), fresh[0] ? T(0) : T(1),
               din[0]->data<T>().data(), ld(K_));
      if (din[1] != nullptr)  // dw [K, N] (+)= xᵀ · dout
        matmul(true, false, K_, N_, M_, T(1), in[0].data<T>().data(), ld(K_), g, ld(N_), fresh[1] ? T(0) : T(1),
               din[1]->data<T>().data(), ld(N_));
      if (db != nullptr && !bias_done) column_sums<T>(g, db, !fresh[2]);
    });
  }

 private:
  template <class T>
  static void clamp(T* __restrict y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = y[i] > T(0) ? y[i] : T(0);
  }
  // db (+)= the column sums of g [M, N] (restrict: the loops vectorise).
  template <class T>
  void column_sums(const T* __restrict g, T* __restrict db, bool add) const {
    if (!add)
      for (std::int64_t j = 0; j < N_; ++j) db[j] = T(0);
    for (std::int64_t r = 0; r < M_; ++r) {
      const T* __restrict row = g + r * N_;
      for (std::int64_t j = 0; j < N_; ++j) db[j] += row[j];
    }
  }
  // m = g where y > 0, else 0; and db (+)= m's column sums when db is given.
  template <class T>
  void mask_rows(const T* __restrict y, const T* __restrict g, T* __restrict m, T* __restrict db, bool add) const {
    if (db != nullptr && !add)
      for (std::int64_t j = 0; j < N_; ++j) db[j] = T(0);
    for (std::int64_t r = 0; r < M_; ++r) {
      const T* __restrict yr = y + r * N_;
      const T* __restrict gr = g + r * N_;
      T* __restrict mr = m + r * N_;
      for (std::int64_t j = 0; j < N_; ++j) {
        const T gv = gr[j];  // loaded whatever the sign: a select, not a branch (the loop vectorises)
        mr[j] = yr[j] > T(0) ? gv : T(0);
      }
      if (db != nullptr)
        for (std::int64_t j = 0; j < N_; ++j) db[j] += mr[j];
    }
  }

  bool has_bias_, relu_;
  std::int64_t M_, K_, N_;
  Array masked_;  // relu: the output gradient through the ReLU  // the row lengths passed as lda/ldb/ldc are max(K_, 1), max(N_, 1): BLAS's rule
};

Var product(std::string_view what, Var x, Var w, const Var* bias, bool relu = false) {
  Graph& g = bias ? check_operands(what, {x, w, *bias}) : check_operands(what, {x, w});
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  if (xs.rank() < 1) detail::fail(what, "the input is a scalar; it needs at least 1 dimension [..., K]");
  if (ws.rank() != 2)
    detail::fail(what, "the weight has shape " + ws.to_string() + "; it needs 2 dimensions [K, N]");
  const std::int64_t K = xs[xs.rank() - 1];
  if (ws[0] != K)
    detail::fail(what, "the input's last dimension is " + std::to_string(K) + " (shape " + xs.to_string() +
                           ") but the weight has " + std::to_string(ws[0]) + " rows (shape " + ws.to_string() + ")");
  const std::int64_t N = ws[1];
  if (bias && bias->shape() != Shape{N})
    detail::fail(what, "the bias has shape " + bias->shape().to_string() + "; expected [" + std::to_string(N) + "]");
  std::vector<std::int64_t> dims(xs.begin(), xs.end());
  dims.back() = N;
  const std::int64_t M = K == 0 ? Shape(std::vector<std::int64_t>(xs.begin(), xs.end() - 1)).numel() : xs.numel() / K;
  auto op = std::make_unique<Linear>(bias != nullptr, relu, M, K, N);
  if (bias) return g.apply(std::move(op), {x, w, *bias}, Shape(std::move(dims)), x.dtype());
  return g.apply(std::move(op), {x, w}, Shape(std::move(dims)), x.dtype());
}

}  // namespace

Var matmul(Var a, Var b) { return product("matmul", a, b, nullptr); }
Var linear(Var x, Var kernel, Var bias) { return product("linear", x, kernel, &bias); }
Var linear_relu(Var x, Var kernel, Var bias) { return product("linear_relu", x, kernel, &bias, true); }

}  // namespace datarax::nn
