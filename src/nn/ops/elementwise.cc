// Element-wise ops (ops/elementwise.h): forward and backward of each side by side.
#include "datarax/nn/ops/elementwise.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>

#include "nn/ops/dispatch.h"

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
// in Unary's form, dout · f'(x), GCC keeps a branch around the multiply (it may not run a floating
// multiply speculatively), and a branch on the sign of activations mispredicts half the time.
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
  if (mode == GeluMode::exact)
    return unary(
        "gelu", x,
        [](auto v) {
          using T = decltype(v);
          return T(0.5) * v * (T(1) + std::erf(v * T(std::numbers::sqrt2 / 2)));
        },
        [](auto v, auto) {
          using T = decltype(v);
          const T cdf = T(0.5) * (T(1) + std::erf(v * T(std::numbers::sqrt2 / 2)));
          const T pdf = std::exp(T(-0.5) * v * v) * T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
          return cdf + v * pdf;
        });
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
