// Element-wise ops (ops/elementwise.h): forward and backward of each side by side.
#include "datarax/nn/ops/elementwise.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>
#include <type_traits>

#include "core/target_clones.h"
#include "nn/ops/dispatch.h"
#include "nn/ops/fast_math.h"

namespace datarax::nn {

namespace {

using detail::with_float;

// --- binary arithmetic with b repeated along a's leading dimensions -----------------------------

enum class Arith : unsigned char { add, sub, mul };

class Binary final : public FreshOp {
 public:
  explicit Binary(Arith kind) : kind_(kind) {}
  std::string_view name() const override {
    return kind_ == Arith::add ? "add" : kind_ == Arith::sub ? "sub" : "mul";
  }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* a = in[0].data<T>().data();
      const T* b = in[1].data<T>().data();
      T* y = out.data<T>().data();
      const std::int64_t n = out.numel(), m = in[1].numel();
      for (std::int64_t r = 0; r < n; r += m) {
        if (kind_ == Arith::add)
          for (std::int64_t j = 0; j < m; ++j) y[r + j] = a[r + j] + b[j];
        else if (kind_ == Arith::sub)
          for (std::int64_t j = 0; j < m; ++j) y[r + j] = a[r + j] - b[j];
        else
          for (std::int64_t j = 0; j < m; ++j) y[r + j] = a[r + j] * b[j];
      }
    });
  }

  // da is written (fresh) or added to; db, a sum over a's rows, is zeroed first when fresh.
  void backward_fresh(std::span<const Array> in, const Array&, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* a = in[0].data<T>().data();
      const T* b = in[1].data<T>().data();
      const T* g = dout.data<T>().data();
      const std::int64_t n = dout.numel(), m = in[1].numel();
      if (din[0] != nullptr) {
        T* da = din[0]->data<T>().data();
        const bool mul = kind_ == Arith::mul;
        detail::store(fresh[0], [&]<bool kWrite>() {
          for (std::int64_t r = 0; r < n; r += m)
            for (std::int64_t j = 0; j < m; ++j) detail::put<kWrite>(da[r + j], mul ? g[r + j] * b[j] : g[r + j]);
        });
      }
      if (din[1] != nullptr) {
        T* db = din[1]->data<T>().data();
        if (fresh[1])
          for (std::int64_t j = 0; j < m; ++j) db[j] = T(0);
        const T sign = kind_ == Arith::sub ? T(-1) : T(1);
        for (std::int64_t r = 0; r < n; r += m)
          for (std::int64_t j = 0; j < m; ++j) db[j] += kind_ == Arith::mul ? g[r + j] * a[r + j] : sign * g[r + j];
      }
    });
  }

 private:
  Arith kind_;
};

// b broadcasts onto a when it has one element or its shape is a trailing part of a's.
bool broadcasts(const Shape& a, const Shape& b) {
  if (b.numel() == 1) return true;
  if (b.rank() > a.rank()) return false;
  for (int i = 1; i <= b.rank(); ++i)
    if (b[b.rank() - i] != a[a.rank() - i]) return false;
  return true;
}

Var binary(Arith kind, std::string_view what, Var a, Var b) {
  Graph& g = check_operands(what, {a, b});
  if (!broadcasts(a.shape(), b.shape()))
    detail::fail(what, "shapes " + a.shape().to_string() + " and " + b.shape().to_string() +
                           " do not broadcast: the second operand's shape must equal the first's, a "
                           "trailing part of it, or have one element");
  return g.apply(std::make_unique<Binary>(kind), {a, b}, a.shape(), a.dtype());
}

// --- unary ops: y = f(x), dy/dx from x and y ------------------------------------------------------

template <class Fn, class Dfn>
class Unary final : public FreshOp {
 public:
  Unary(std::string_view name, Fn f, Dfn df) : name_(name), f_(f), df_(df) {}
  std::string_view name() const override { return name_; }
  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name_, [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      T* y = out.data<T>().data();
      const std::int64_t n = out.numel();
      for (std::int64_t i = 0; i < n; ++i) y[i] = f_(x[i]);
    });
  }
  void backward_fresh(std::span<const Array> in, const Array& out, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] == nullptr) return;
    with_float(out.dtype(), name_, [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      const T* y = out.data<T>().data();
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      const std::int64_t n = out.numel();
      detail::store(fresh[0], [&]<bool kWrite>() {
        for (std::int64_t i = 0; i < n; ++i) detail::put<kWrite>(dx[i], g[i] * df_(x[i], y[i]));
      });
    });
  }

 private:
  std::string_view name_;
  Fn f_;
  Dfn df_;
};

// relu has an op of its own: its backward as a select (dout where x > 0, else 0) vectorizes, while
// in Unary's form, dout · f'(x), GCC kept a branch around the multiply (under -ftrapping-math it
// may not run a floating multiply speculatively; this file is now built with -fno-trapping-math,
// see CMakeLists.txt), and a branch on the sign of activations mispredicts half the time.
class Relu final : public FreshOp {
 public:
  std::string_view name() const override { return "relu"; }
  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      T* y = out.data<T>().data();
      const std::int64_t n = out.numel();
      for (std::int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], T(0));
    });
  }
  void backward_fresh(std::span<const Array> in, const Array& out, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] == nullptr) return;
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      const std::int64_t n = out.numel();
      detail::store(fresh[0], [&]<bool kWrite>() {
        for (std::int64_t i = 0; i < n; ++i) {
          const T gi = g[i];
          detail::put<kWrite>(dx[i], x[i] > 0 ? gi : T(0));  // the derivative at 0 is taken as 0
        }
      });
    });
  }
};

// GELU, exact: x · Φ(x), Φ(x) = (1 + erf(x/√2)) / 2; its derivative Φ(x) + x · φ(x), φ(x) =
// exp(−x²/2)/√(2π). In f32 Φ comes from erfc_f32 (nn/ops/fast_math.h) in loops the compiler
// vectorizes — with libm's erff, one call per element, GELU took a sixth of a GPT step (16% of
// the baby GPT's op time, on an Intel Xeon 6 model 207) — within 4e-7 relative of the exact value,
// plus 1.5e-7 · x² relative for x < 0 (the bound tests/nn/ops/autodiff_test.cc holds it to over
// [−16, 16]); f64 keeps std::erf.
[[gnu::always_inline]] inline float phi_f32(float x) {  // Φ(x): erfc of |x|/√2 halved, reflected for x > 0
  const float half_tail = 0.5f * detail::erfc_f32(std::abs(x) * 0.70710678118654752f);
  return x > 0.0f ? 1.0f - half_tail : half_tail;  // (a select: -fno-trapping-math lets it vectorize)
}
DATARAX_CLONES void gelu_forward_f32(const float* __restrict x, float* __restrict y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] * phi_f32(x[i]);
}
// dout · (Φ(x) + x · φ(x)).
[[gnu::always_inline]] inline float gelu_grad_f32(float v, float g) {
  const float pdf = detail::exp_f32(-0.5f * v * v) * 0.39894228040143268f;
  return g * (phi_f32(v) + v * pdf);
}
// dx = that (fresh), or dx += that: two loops, so that neither holds a branch.
DATARAX_CLONES void gelu_backward_f32(const float* __restrict x, const float* __restrict g, float* __restrict dx,
                                      std::int64_t n, bool write) {
  if (write)
    for (std::int64_t i = 0; i < n; ++i) dx[i] = gelu_grad_f32(x[i], g[i]);
  else
    for (std::int64_t i = 0; i < n; ++i) dx[i] += gelu_grad_f32(x[i], g[i]);
}

class Gelu final : public FreshOp {
 public:
  std::string_view name() const override { return "gelu"; }
  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      T* y = out.data<T>().data();
      const std::int64_t n = out.numel();
      if constexpr (std::is_same_v<T, float>) {
        gelu_forward_f32(x, y, n);
      } else {
        for (std::int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(std::numbers::sqrt2 / 2)));
      }
    });
  }
  void backward_fresh(std::span<const Array> in, const Array& out, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] == nullptr) return;
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      const std::int64_t n = out.numel();
      if constexpr (std::is_same_v<T, float>) {
        gelu_backward_f32(x, g, dx, n, fresh[0]);
      } else {
        detail::store(fresh[0], [&]<bool kWrite>() {
          for (std::int64_t i = 0; i < n; ++i) {
            const T v = x[i];
            const T cdf = T(0.5) * (T(1) + std::erf(v * T(std::numbers::sqrt2 / 2)));
            const T pdf = std::exp(T(-0.5) * v * v) * T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
            detail::put<kWrite>(dx[i], g[i] * (cdf + v * pdf));
          }
        });
      }
    });
  }
};

template <class Fn, class Dfn>
Var unary(std::string_view what, Var x, Fn f, Dfn df) {
  Graph& g = check_operands(what, {x});
  return g.apply(std::make_unique<Unary<Fn, Dfn>>(what, f, df), {x}, x.shape(), x.dtype());
}

}  // namespace

Var add(Var a, Var b) { return binary(Arith::add, "add", a, b); }
Var sub(Var a, Var b) { return binary(Arith::sub, "sub", a, b); }
Var mul(Var a, Var b) { return binary(Arith::mul, "mul", a, b); }

Var scale(Var x, double c) {
  if (!std::isfinite(c)) detail::fail("scale", "factor " + std::to_string(c) + " is not finite");
  return unary(
      "scale", x, [c](auto v) { return static_cast<decltype(v)>(v * c); },
      [c](auto v, auto) { return static_cast<decltype(v)>(c); });
}

Var add_scalar(Var x, double c) {
  if (!std::isfinite(c)) detail::fail("add_scalar", "value " + std::to_string(c) + " is not finite");
  return unary(
      "add_scalar", x, [c](auto v) { return static_cast<decltype(v)>(v + c); },
      [](auto v, auto) { return decltype(v)(1); });
}

Var relu(Var x) {
  Graph& g = check_operands("relu", {x});
  return g.apply(std::make_unique<Relu>(), {x}, x.shape(), x.dtype());
}

Var gelu(Var x, GeluMode mode) {
  if (mode == GeluMode::exact) {
    Graph& g = check_operands("gelu", {x});
    return g.apply(std::make_unique<Gelu>(), {x}, x.shape(), x.dtype());
  }
  if (mode != GeluMode::tanh)
    detail::fail("gelu", "mode " + std::to_string(static_cast<int>(mode)) + "; valid: exact, tanh");
  return unary(
      "gelu_tanh", x,
      [](auto v) {
        using T = decltype(v);
        const T k = T(std::numbers::sqrt2 * std::numbers::inv_sqrtpi);  // √(2/π)
        return T(0.5) * v * (T(1) + std::tanh(k * (v + T(0.044715) * v * v * v)));
      },
      [](auto v, auto) {
        using T = decltype(v);
        const T k = T(std::numbers::sqrt2 * std::numbers::inv_sqrtpi);
        const T u = k * (v + T(0.044715) * v * v * v);
        const T t = std::tanh(u);
        return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * k * (T(1) + T(3 * 0.044715) * v * v);
      });
}

Var tanh(Var x) {
  return unary(
      "tanh", x, [](auto v) { return std::tanh(v); },
      [](auto, auto y) { return decltype(y)(1) - y * y; });
}

Var sigmoid(Var x) {
  return unary(
      "sigmoid", x,
      [](auto v) {
        using T = decltype(v);
        // Stable on both sides: never exp of a large positive number.
        if (v >= 0) return T(1) / (T(1) + std::exp(-v));
        const T e = std::exp(v);
        return e / (T(1) + e);
      },
      [](auto, auto y) { return y * (decltype(y)(1) - y); });
}

}  // namespace datarax::nn
