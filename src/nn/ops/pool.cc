// max_pool and avg_pool (ops/pool.h): one pass over each window, channels innermost (contiguous in
// NHWC, so the loops over c vectorize).
#include "datarax/nn/ops/pool.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/target_clones.h"
#include "nn/ops/dispatch.h"
#include "nn/ops/window.h"

namespace datarax::nn {

namespace {

using detail::Window2d;
using detail::with_float;

// The window positions [lo, hi) of an output row or column that fall inside the image.
struct Span {
  std::int64_t lo, hi;
};
Span inside(std::int64_t first, std::int64_t k, std::int64_t extent) {
  const std::int64_t lo = std::clamp<std::int64_t>(-first, 0, k);
  return {lo, std::clamp<std::int64_t>(extent - first, lo, k)};
}

// fn(n, oh, ow, rows, cols, output offset): each output position with its window's inside part.
template <class Fn>
void each_window(const Window2d& g, Fn&& fn) {
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const Span rows = inside(g.first_row(oh), g.KH, g.H);
      for (std::int64_t ow = 0; ow < g.OW; ++ow)
        fn(n, oh, ow, rows, inside(g.first_col(ow), g.KW, g.W), ((n * g.OH + oh) * g.OW + ow) * g.C);
    }
}

// The forward's loops, compiled for AVX-512 and AVX2 beside the baseline (core/target_clones.h):
// the loops over channels are where the time goes. y [N, OH, OW, C] = the max over each window,
// argmax = the offset within its image of the maximum (the first one in window order on ties).
// Plain loops, no lambdas: a lambda's body is a function of its own, compiled for the baseline.
template <class T>
DATARAX_CLONES void max_pool_forward(const Window2d& g, const T* __restrict x, T* __restrict y,
                                     std::int32_t* __restrict argmax) {
  const std::int64_t C = g.C;
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const Span rows = inside(g.first_row(oh), g.KH, g.H);
      for (std::int64_t ow = 0; ow < g.OW; ++ow) {
        const Span cols = inside(g.first_col(ow), g.KW, g.W);
        const std::int64_t o = ((n * g.OH + oh) * g.OW + ow) * C;
        T* __restrict best = y + o;
        std::int32_t* __restrict at = argmax + o;
        const T* image = x + n * g.H * g.W * C;
        for (std::int64_t kh = rows.lo; kh < rows.hi; ++kh)
          for (std::int64_t kw = cols.lo; kw < cols.hi; ++kw) {
            // Position within image n; fits i32 (checked in max_pool).
            const auto pos = static_cast<std::int32_t>(((g.first_row(oh) + kh) * g.W + g.first_col(ow) + kw) * C);
            const T* __restrict v = image + pos;
            if (kh == rows.lo && kw == cols.lo) {
              for (std::int64_t c = 0; c < C; ++c) best[c] = v[c], at[c] = pos + static_cast<std::int32_t>(c);
              continue;
            }
            // Strict >: the first maximum keeps the gradient. Written as max and an arithmetic
            // select, not branches, so that the loop over channels vectorizes.
            for (std::int64_t c = 0; c < C; ++c) {
              const auto more = static_cast<std::int32_t>(v[c] > best[c]);
              at[c] += more * (pos + static_cast<std::int32_t>(c) - at[c]);
              best[c] = std::max(best[c], v[c]);
            }
          }
      }
    }
}

// dx = dout at each window's maximum and 0 at the window's other elements, WRITTEN, for windows
// that do not overlap (strides >= window): each element of x is in at most one window.
template <class T>
DATARAX_CLONES void max_pool_backward_write(const Window2d& g, const T* __restrict dout,
                                            const std::int32_t* __restrict argmax, T* __restrict dx) {
  const std::int64_t C = g.C;
  for (std::int64_t n = 0; n < g.N; ++n)
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const Span rows = inside(g.first_row(oh), g.KH, g.H);
      for (std::int64_t ow = 0; ow < g.OW; ++ow) {
        const Span cols = inside(g.first_col(ow), g.KW, g.W);
        const std::int64_t o = ((n * g.OH + oh) * g.OW + ow) * C;
        T* image = dx + n * g.H * g.W * C;
        const std::int32_t* __restrict at = argmax + o;
        const T* __restrict gv = dout + o;
        for (std::int64_t kh = rows.lo; kh < rows.hi; ++kh)
          for (std::int64_t kw = cols.lo; kw < cols.hi; ++kw) {
            const auto pos = static_cast<std::int32_t>(((g.first_row(oh) + kh) * g.W + g.first_col(ow) + kw) * C);
            T* __restrict d = image + pos;
            for (std::int64_t c = 0; c < C; ++c) d[c] = at[c] == pos + static_cast<std::int32_t>(c) ? gv[c] : T(0);
          }
      }
    }
}

class MaxPool final : public FreshOp {
 public:
  explicit MaxPool(const Window2d& g) : g_(g), argmax_(static_cast<std::size_t>(g.N * g.OH * g.OW * g.C)) {
    // Windows that neither overlap nor leave an element of x out (strides = window, and the last
    // window reaching the end: SAME, or VALID on extents the window divides): a fresh dx is
    // written window by window, with no pass of zeros first.
    tiles_ = g.SH == g.KH && g.SW == g.KW && g.OH * g.SH - g.pad_top >= g.H && g.OW * g.SW - g.pad_left >= g.W;
  }
  std::string_view name() const override { return "max_pool"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      max_pool_forward<T>(g_, in[0].data<T>().data(), out.data<T>().data(), argmax_.data());
    });
  }

  void backward_fresh(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      if (fresh[0] && tiles_) {
        max_pool_backward_write<T>(g_, g, argmax_.data(), dx);
        return;
      }
      if (fresh[0]) std::fill(dx, dx + din[0]->numel(), T(0));
      const std::int64_t per_image = g_.OH * g_.OW * g_.C, image = g_.H * g_.W * g_.C;
      for (std::int64_t n = 0; n < g_.N; ++n)
        for (std::int64_t i = n * per_image; i < (n + 1) * per_image; ++i) dx[n * image + argmax_[static_cast<std::size_t>(i)]] += g[i];
    });
  }

 private:
  Window2d g_;
  std::vector<std::int32_t> argmax_;  // per output element: its maximum's offset within its image
  bool tiles_;                        // the windows cover x once each (see the constructor)
};

class AvgPool final : public Op {
 public:
  AvgPool(const Window2d& g, bool count_include_pad) : g_(g), count_include_pad_(count_include_pad) {}
  std::string_view name() const override { return "avg_pool"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      T* y = out.data<T>().data();
      const std::int64_t C = g_.C;
      each_window(g_, [&](std::int64_t n, std::int64_t oh, std::int64_t ow, Span rows, Span cols, std::int64_t o) {
        T* sum = y + o;
        std::fill(sum, sum + C, T(0));
        for (std::int64_t kh = rows.lo; kh < rows.hi; ++kh)
          for (std::int64_t kw = cols.lo; kw < cols.hi; ++kw) {
            const T* v = x + ((n * g_.H + g_.first_row(oh) + kh) * g_.W + g_.first_col(ow) + kw) * C;
            for (std::int64_t c = 0; c < C; ++c) sum[c] += v[c];
          }
        const T inv = T(1) / divisor(rows, cols);
        for (std::int64_t c = 0; c < C; ++c) sum[c] *= inv;
      });
    });
  }

  void backward(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      const std::int64_t C = g_.C;
      each_window(g_, [&](std::int64_t n, std::int64_t oh, std::int64_t ow, Span rows, Span cols, std::int64_t o) {
        const T inv = T(1) / divisor(rows, cols);
        for (std::int64_t kh = rows.lo; kh < rows.hi; ++kh)
          for (std::int64_t kw = cols.lo; kw < cols.hi; ++kw) {
            T* d = dx + ((n * g_.H + g_.first_row(oh) + kh) * g_.W + g_.first_col(ow) + kw) * C;
            for (std::int64_t c = 0; c < C; ++c) d[c] += g[o + c] * inv;
          }
      });
    });
  }

 private:
  double divisor(Span rows, Span cols) const {
    return count_include_pad_ ? static_cast<double>(g_.KH * g_.KW)
                              : static_cast<double>((rows.hi - rows.lo) * (cols.hi - cols.lo));
  }
  Window2d g_;
  bool count_include_pad_;
};

}  // namespace

Var max_pool(Var x, std::array<std::int64_t, 2> window, std::array<std::int64_t, 2> strides, Padding padding) {
  Graph& graph = check_operands("max_pool", {x});
  const Window2d g = detail::window_2d("max_pool", "window", x.shape(), window, strides, padding);
  if (g.H * g.W * g.C > std::numeric_limits<std::int32_t>::max())
    detail::fail("max_pool", "an image of " + x.shape().to_string() + " has " + std::to_string(g.H * g.W * g.C) +
                                 " elements; at most 2^31 - 1 are supported");
  return graph.apply(std::make_unique<MaxPool>(g), {x}, Shape{g.N, g.OH, g.OW, g.C}, x.dtype());
}

Var avg_pool(Var x, std::array<std::int64_t, 2> window, std::array<std::int64_t, 2> strides, Padding padding,
             bool count_include_pad) {
  Graph& graph = check_operands("avg_pool", {x});
  const Window2d g = detail::window_2d("avg_pool", "window", x.shape(), window, strides, padding);
  return graph.apply(std::make_unique<AvgPool>(g, count_include_pad), {x}, Shape{g.N, g.OH, g.OW, g.C}, x.dtype());
}

}  // namespace datarax::nn
