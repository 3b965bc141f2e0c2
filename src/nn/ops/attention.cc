// causal_attention op (ops/attention.h): FlashAttention-2's forward and backward on the CPU.
//
// One head of one example at a time: rows t of q, k and v sit ldi apart (H · D, or 3 · H · D when
// they come packed in one [B, T, 3 · H · D] input), rows of out ldo = H · D apart. For query tile
// i (rows i0..i0+nq−1) and key tile j <= i, S = scale · Q_i K_jᵀ [nq, nk]; on the diagonal tile
// (j = i) key c is visible from row r only when c <= r. Forward keeps a running max m and sum l
// per row, rescales the partial output when m grows, and ends with out = O / l, lse = m + log l.
// Backward, with P = exp(S − lse) and Δ_r = Σ_d dout[r, d] · out[r, d]:
//   dV_j += Pᵀ dO_i;  dP = dO_i V_jᵀ;  dS = P ⊙ (dP − Δ);  dQ_i += scale · dS K_j;  dK_j += scale · dSᵀ Q_i
// accumulating straight into the gradients (the op contract's +=), so no per-head buffer is needed.
#include "datarax/nn/ops/attention.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <limits>
#include <memory>

#include "core/target_clones.h"
#include "datarax/nn/matmul.h"
#include "nn/ops/dispatch.h"
#include "nn/ops/fast_math.h"

namespace datarax::nn {

namespace {

using detail::with_float;

constexpr std::int64_t kTile = 64;

// x[i] = exp(x[i] − shift) for i < n; returns Σ x[i]. The exps of a tile are most of the op's
// work besides its products, and libm's expf is one call per element, so f32 uses exp_f32
// (nn/ops/fast_math.h: within 1 ulp) in a loop the compiler vectorizes, with eight partial sums.
// Arguments below −87 (exp < 2^−126: nothing against a row sum >= 1) give 0. f64 keeps std::exp:
// it is the checking precision.
DATARAX_CLONES float exp_shifted(float* __restrict x, std::int64_t n, float shift) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float a = x[i] - shift;
    const float e = detail::exp_f32(a);
    x[i] = a < -87.0f ? 0.0f : e;
  }
  float part[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += x[i + j];
  for (; i < n; ++i) part[0] += x[i];
  return ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
}
// max(m, x[0..n)): sixteen partial maxima, so the compiler vectorizes it (one running max is a
// chain of dependent compares).
DATARAX_CLONES float row_max(const float* __restrict x, std::int64_t n, float m) {
  float part[16];
  for (float& p : part) p = m;
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) part[j] = part[j] > x[i + j] ? part[j] : x[i + j];
  for (; i < n; ++i) part[0] = std::max(part[0], x[i]);
  for (int j = 1; j < 16; ++j) part[0] = std::max(part[0], part[j]);
  return part[0];
}
double row_max(const double* x, std::int64_t n, double m) {
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}
double exp_shifted(double* x, std::int64_t n, double shift) {
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += x[i] = std::exp(x[i] - shift);
  return sum;
}

class CausalAttention final : public Op {
 public:
  CausalAttention(std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t D, bool packed, DType dtype)
      : B_(B), T_(T), H_(H), D_(D), packed_(packed), ldi_((packed ? 3 : 1) * H * D), ldo_(H * D),
        t_(std::min(T, kTile)), lse_(Array::empty({B, H, T}, dtype)),
        s_(Array::empty({t_ * t_}, dtype)), dp_(Array::empty({t_ * t_}, dtype)), m_(Array::empty({t_}, dtype)),
        l_(Array::empty({t_}, dtype)) {}
  std::string_view name() const override { return "causal_attention"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const auto qkv = operands<T>(in);
      for (std::int64_t b = 0; b < B_; ++b)
        for (std::int64_t h = 0; h < H_; ++h) {
          const std::int64_t bi = b * T_ * ldi_ + h * D_, bo = b * T_ * ldo_ + h * D_;
          forward_head<T>(qkv[0] + bi, qkv[1] + bi, qkv[2] + bi, out.data<T>().data() + bo,
                          lse_.data<T>().data() + (b * H_ + h) * T_);
        }
    });
  }

  void backward(std::span<const Array> in, const Array& out, const Array& dout, std::span<Array* const> din) override {
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const auto qkv = operands<T>(in);
      // dq, dk and dv: three inputs' gradients, or the thirds of the packed input's (null where
      // no gradient is asked for).
      T* grads[3];
      for (int i = 0; i < 3; ++i) {
        Array* g = din[packed_ ? 0 : static_cast<std::size_t>(i)];
        grads[i] = g == nullptr ? nullptr : g->data<T>().data() + (packed_ ? i * H_ * D_ : 0);
      }
      const auto at = [](T* g, std::int64_t base) { return g ? g + base : nullptr; };
      for (std::int64_t b = 0; b < B_; ++b)
        for (std::int64_t h = 0; h < H_; ++h) {
          const std::int64_t bi = b * T_ * ldi_ + h * D_, bo = b * T_ * ldo_ + h * D_;
          backward_head<T>(qkv[0] + bi, qkv[1] + bi, qkv[2] + bi, out.data<T>().data() + bo,
                           dout.data<T>().data() + bo, lse_.data<T>().data() + (b * H_ + h) * T_, at(grads[0], bi),
                           at(grads[1], bi), at(grads[2], bi));
        }
    });
  }

 private:
  // q, k and v: the three inputs, or the thirds of the packed one.
  template <class T>
  std::array<const T*, 3> operands(std::span<const Array> in) const {
    if (!packed_) return {in[0].data<T>().data(), in[1].data<T>().data(), in[2].data<T>().data()};
    const T* qkv = in[0].data<T>().data();
    return {qkv, qkv + H_ * D_, qkv + 2 * H_ * D_};
  }
  // S [nq, nk] = scale · Q Kᵀ for the tile (i0, j0).
  template <class T>
  void scores(const T* q, const T* k, std::int64_t i0, std::int64_t j0, std::int64_t nq, std::int64_t nk, T* s) const {
    matmul(false, true, nq, nk, D_, scale<T>(), q + i0 * ldi_, ldi_, k + j0 * ldi_, ldi_, T(0), s, nk);
  }
  template <class T>
  T scale() const {
    return static_cast<T>(1.0 / std::sqrt(static_cast<double>(D_)));
  }

  template <class T>
  void forward_head(const T* q, const T* k, const T* v, T* out, T* lse) {
    const std::int64_t ld = ldo_;  // out's rows
    T* s = s_.data<T>().data();
    T* m = m_.data<T>().data();
    T* l = l_.data<T>().data();
    for (std::int64_t i0 = 0; i0 < T_; i0 += kTile) {
      const std::int64_t nq = std::min(kTile, T_ - i0);
      T* o = out + i0 * ld;
      for (std::int64_t r = 0; r < nq; ++r) {
        std::fill(o + r * ld, o + r * ld + D_, T(0));
        m[r] = -std::numeric_limits<T>::infinity();
        l[r] = 0;
      }
      for (std::int64_t j0 = 0; j0 <= i0; j0 += kTile) {
        const std::int64_t nk = std::min(kTile, T_ - j0);
        scores(q, k, i0, j0, nq, nk, s);
        for (std::int64_t r = 0; r < nq; ++r) {
          T* sr = s + r * nk;
          const std::int64_t visible = j0 == i0 ? r + 1 : nk;
          const T mx = row_max(sr, visible, m[r]);
          const T sum = exp_shifted(sr, visible, mx);
          std::fill(sr + visible, sr + nk, T(0));
          const T corr = std::exp(m[r] - mx);  // 0 on the first tile (m = −∞)
          l[r] = l[r] * corr + sum;
          m[r] = mx;
          if (j0 > 0)
            for (std::int64_t d = 0; d < D_; ++d) o[r * ld + d] *= corr;
        }
        matmul(false, false, nq, D_, nk, T(1), s, nk, v + j0 * ldi_, ldi_, T(1), o, ld);  // O += P V_j
      }
      for (std::int64_t r = 0; r < nq; ++r) {
        const T inv = T(1) / l[r];
        for (std::int64_t d = 0; d < D_; ++d) o[r * ld + d] *= inv;
        lse[i0 + r] = m[r] + std::log(l[r]);
      }
    }
  }

  template <class T>
  void backward_head(const T* q, const T* k, const T* v, const T* out, const T* dout, const T* lse, T* dq, T* dk,
                     T* dv) {
    if (!dq && !dk && !dv) return;
    const std::int64_t ld = ldo_, li = ldi_;  // rows of out and dout; of q, k, v and their gradients
    T* p = s_.data<T>().data();
    T* ds = dp_.data<T>().data();
    T* delta = m_.data<T>().data();
    for (std::int64_t i0 = 0; i0 < T_; i0 += kTile) {
      const std::int64_t nq = std::min(kTile, T_ - i0);
      const T* go = dout + i0 * ld;
      for (std::int64_t r = 0; r < nq; ++r) {
        T acc = 0;
        for (std::int64_t d = 0; d < D_; ++d) acc += go[r * ld + d] * out[(i0 + r) * ld + d];
        delta[r] = acc;
      }
      for (std::int64_t j0 = 0; j0 <= i0; j0 += kTile) {
        const std::int64_t nk = std::min(kTile, T_ - j0);
        scores(q, k, i0, j0, nq, nk, p);
        for (std::int64_t r = 0; r < nq; ++r) {
          T* pr = p + r * nk;
          const std::int64_t visible = j0 == i0 ? r + 1 : nk;
          exp_shifted(pr, visible, lse[i0 + r]);
          std::fill(pr + visible, pr + nk, T(0));
        }
        if (dv) matmul(true, false, nk, D_, nq, T(1), p, nk, go, ld, T(1), dv + j0 * li, li);
        if (!dq && !dk) continue;
        matmul(false, true, nq, nk, D_, T(1), go, ld, v + j0 * li, li, T(0), ds, nk);  // dP
        for (std::int64_t r = 0; r < nq; ++r)
          for (std::int64_t c = 0; c < nk; ++c) ds[r * nk + c] = p[r * nk + c] * (ds[r * nk + c] - delta[r]);
        if (dq) matmul(false, false, nq, D_, nk, scale<T>(), ds, nk, k + j0 * li, li, T(1), dq + i0 * li, li);
        if (dk) matmul(true, false, nk, D_, nq, scale<T>(), ds, nk, q + i0 * li, li, T(1), dk + j0 * li, li);
      }
    }
  }

  std::int64_t B_, T_, H_, D_;
  bool packed_;             // q, k and v as the thirds of one [B, T, 3 · H · D] input
  std::int64_t ldi_, ldo_;  // row strides of the inputs and of the output
  std::int64_t t_;
  Array lse_;             // [B, H, T]: saved by forward for backward
  Array s_, dp_, m_, l_;  // scratch: tiles [t, t], per-row vectors [t]
};

}  // namespace

Var causal_attention(Var q, Var k, Var v) {
  constexpr std::string_view what = "causal_attention";
  Graph& g = check_operands(what, {q, k, v});
  const Shape& s = q.shape();
  if (s.rank() != 4) detail::fail(what, "q has shape " + s.to_string() + "; it needs [B, T, H, D]");
  if (k.shape() != s || v.shape() != s)
    detail::fail(what, "q, k and v have shapes " + s.to_string() + ", " + k.shape().to_string() + ", " +
                           v.shape().to_string() + "; they need one shape [B, T, H, D]");
  if (s[3] < 1) detail::fail(what, "head size D = " + std::to_string(s[3]) + " (shape " + s.to_string() + "); valid: >= 1");
  return g.apply(std::make_unique<CausalAttention>(s[0], s[1], s[2], s[3], false, q.dtype()), {q, k, v}, s, q.dtype());
}

Var causal_attention(Var qkv, std::int64_t heads) {
  constexpr std::string_view what = "causal_attention";
  Graph& g = check_operands(what, {qkv});
  const Shape& s = qkv.shape();
  if (s.rank() != 3)
    detail::fail(what, "qkv has shape " + s.to_string() + "; it needs [B, T, 3 · C] (q, k and v side by side)");
  if (heads < 1) detail::fail(what, "heads = " + std::to_string(heads) + "; valid: >= 1");
  if (s[2] < 1 || s[2] % (3 * heads) != 0)
    detail::fail(what, "qkv has shape " + s.to_string() + " and heads = " + std::to_string(heads) +
                           ": its last extent must be 3 · heads · D with D >= 1, a positive multiple of " +
                           std::to_string(3 * heads));
  const std::int64_t D = s[2] / (3 * heads);
  return g.apply(std::make_unique<CausalAttention>(s[0], s[1], heads, D, true, qkv.dtype()), {qkv},
                 Shape{s[0], s[1], heads * D}, qkv.dtype());
}

}  // namespace datarax::nn
