// conv2d (ops/conv.h): im2col over chunks of output rows, one nn::matmul per chunk.
#include "datarax/nn/ops/conv.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "datarax/nn/matmul.h"
#include "nn/ops/conv_direct.h"
#include "nn/ops/conv_pool.h"
#include "nn/ops/dispatch.h"
#include "nn/ops/window.h"

namespace datarax::nn {

namespace {

using detail::Window2d;
using detail::with_float;

// Bytes of patches and output rows per chunk: small enough that a chunk's patches are still in L2
// when the product (forward) or the two products and the scatter (backward) read them again.
// Measured on the MNIST CNN's step (bench/cnn_step, batch 128, one thread): 256 KiB and 1 MiB
// alike, 4 MiB 9% slower, the whole batch at once (no chunks) 30% slower.
constexpr std::int64_t kChunkBytes = 1 << 20;

// cols [lines · OW, KH · KW · C] = the patches of output lines [line0, line0 + lines), a line being
// one output row (n, oh); each patch row is in kernel order (kh, kw, c). For one kh, the patch's
// (kw, c) run is contiguous in NHWC x, so it is one copy plus zeros where it leaves the image.
template <class T>
void im2col(const Window2d& g, const T* x, std::int64_t line0, std::int64_t lines, T* cols) {
  const std::int64_t K = g.KH * g.KW * g.C, run = g.KW * g.C;
  for (std::int64_t l = line0; l < line0 + lines; ++l) {
    const std::int64_t n = l / g.OH, oh = l % g.OH;
    const T* image = x + n * g.H * g.W * g.C;
    for (std::int64_t ow = 0; ow < g.OW; ++ow) {
      T* row = cols + ((l - line0) * g.OW + ow) * K;
      const std::int64_t iw0 = g.first_col(ow);
      const std::int64_t lo = std::clamp<std::int64_t>(-iw0, 0, g.KW), hi = std::clamp<std::int64_t>(g.W - iw0, lo, g.KW);
      for (std::int64_t kh = 0; kh < g.KH; ++kh) {
        T* dst = row + kh * run;
        const std::int64_t ih = g.first_row(oh) + kh;
        if (ih < 0 || ih >= g.H) {
          std::fill(dst, dst + run, T(0));
          continue;
        }
        const T* src = image + (ih * g.W + iw0 + lo) * g.C;
        if (run < 16) {  // a short run (few channels): a call to memcpy would cost more than the copy
          for (std::int64_t j = 0; j < run; ++j) dst[j] = j >= lo * g.C && j < hi * g.C ? src[j - lo * g.C] : T(0);
          continue;
        }
        std::fill(dst, dst + lo * g.C, T(0));
        std::copy_n(src, (hi - lo) * g.C, dst + lo * g.C);
        std::fill(dst + hi * g.C, dst + run, T(0));
      }
    }
  }
}

// The transpose of im2col: dx += the patches' gradients, each added where im2col read it.
template <class T>
void col2im(const Window2d& g, const T* dcols, std::int64_t line0, std::int64_t lines, T* dx) {
  const std::int64_t K = g.KH * g.KW * g.C, run = g.KW * g.C;
  for (std::int64_t l = line0; l < line0 + lines; ++l) {
    const std::int64_t n = l / g.OH, oh = l % g.OH;
    T* image = dx + n * g.H * g.W * g.C;
    for (std::int64_t ow = 0; ow < g.OW; ++ow) {
      const T* row = dcols + ((l - line0) * g.OW + ow) * K;
      const std::int64_t iw0 = g.first_col(ow);
      const std::int64_t lo = std::clamp<std::int64_t>(-iw0, 0, g.KW), hi = std::clamp<std::int64_t>(g.W - iw0, lo, g.KW);
      for (std::int64_t kh = 0; kh < g.KH; ++kh) {
        const std::int64_t ih = g.first_row(oh) + kh;
        if (ih < 0 || ih >= g.H) continue;
        const T* src = row + kh * run + lo * g.C;
        T* dst = image + (ih * g.W + iw0 + lo) * g.C;
        const std::int64_t m = (hi - lo) * g.C;
        for (std::int64_t i = 0; i < m; ++i) dst[i] += src[i];
      }
    }
  }
}

// y [N, OH, OW, O] = x ⋆ kernel [KH, KW, C, O] (+ bias [O] with three inputs), or that pooled
// (Conv2dOptions::max_pool) into [N, QH, QW, O].
//
// The im2col path works in chunks of units: a unit is a pooled line (n, qh), the PH convolution
// lines (output rows) n · OH + qh · PH + [0, PH); the convolution's lines past QH · PH in each image
// are not computed. Unpooled, pool_ is {1, 1, OH, OW}: a unit is one output line.
class Conv2d final : public FreshOp {
 public:
  Conv2d(const Window2d& g, std::int64_t out_channels, bool has_bias, bool relu, const detail::FusedPool& pool,
         DType dtype)
      : g_(g), O_(out_channels), K_(g.KH * g.KW * g.C), has_bias_(has_bias), relu_(relu), pool_(pool), dtype_(dtype) {
    // A 1x1 kernel with stride 1 reads x as the patches themselves: no gather, no buffer (unpooled:
    // a pooled chunk's lines need not be contiguous in x).
    direct_ = g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && !pool.on();
    // One input channel and a 3x3 kernel: conv_direct.h, no patches (unless dx is asked for).
    one_channel_ = detail::conv_direct_applies(g, dtype);
    // A chunk's patches and its output rows both fit kChunkBytes (conv_0 of an MNIST CNN: K = 9,
    // 32 outputs per row); pooled, whole pooled lines.
    const std::int64_t line_bytes = g.OW * (K_ + O_) * static_cast<std::int64_t>(dtype == DType::f64 ? 8 : 4);
    chunk_units_ = std::clamp<std::int64_t>(kChunkBytes / (line_bytes * pool.PH), 1, std::max<std::int64_t>(g.N * pool.QH, 1));
    if (pool.on()) arg_.resize(static_cast<std::size_t>(g.N * pool.QH * pool.QW * O_ + detail::kArgSlack));
    if (!one_channel_) allocate_chunk_buffers();
  }
  std::string_view name() const override { return "conv2d"; }

  void forward(std::span<const Array> in, Array& out) override {
    if (one_channel_) {
      detail::conv_direct_forward(g_, O_, in[0].data<float>().data(), in[1].data<float>().data(),
                                  has_bias_ ? in[2].data<float>().data() : nullptr, relu_, pool_,
                                  out.data<float>().data(), arg_.data());
      return;
    }
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      const T* k = in[1].data<T>().data();
      T* y = out.data<T>().data();
      const T* b = has_bias_ ? in[2].data<T>().data() : nullptr;
      each_chunk([&](std::int64_t unit0, std::int64_t units) {
        const std::int64_t rows = units * pool_.PH * g_.OW;
        if (pool_.on()) {  // the product into the chunk buffer, pooled from there while in cache
          T* yc = masked_.data<T>().data();
          matmul(false, false, rows, O_, K_, T(1), patches<T>(x, unit0, units), K_, k, O_, T(0), yc, O_);
          const std::int64_t per_line = pool_.QW * O_, line_rows = pool_.PH * g_.OW * O_;
          for (std::int64_t u = 0; u < units; ++u)
            detail::pool_line(pool_, g_.OW, O_, yc + u * line_rows, b, relu_, y + (unit0 + u) * per_line,
                      arg_.data() + (unit0 + u) * per_line);
          return;
        }
        T* yc = y + unit0 * g_.OW * O_;
        matmul(false, false, rows, O_, K_, T(1), patches<T>(x, unit0, units), K_, k, O_, T(0), yc, O_);
        // Bias and ReLU in one pass over the chunk, while the product's output is in cache.
        if (b && relu_)
          for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t o = 0; o < O_; ++o) yc[r * O_ + o] = std::max(yc[r * O_ + o] + b[o], T(0));
        else if (b)
          for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t o = 0; o < O_; ++o) yc[r * O_ + o] += b[o];
        else if (relu_)
          for (std::int64_t i = 0; i < rows * O_; ++i) yc[i] = std::max(yc[i], T(0));
      });
    });
  }

  // dkernel and dbias are written by the first chunk when fresh (no pass of zeros); dx, which
  // col2im adds to from overlapping windows, is zeroed first when fresh.
  void backward_fresh(std::span<const Array> in, const Array& out, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    const bool dk_fresh = din[1] && fresh[1], db_fresh = has_bias_ && din[2] && fresh[2];
    if (one_channel_ && din[0] == nullptr) {
      detail::conv_direct_backward(g_, O_, in[0].data<float>().data(), out.data<float>().data(), relu_, pool_,
                                   arg_.data(), dout.data<float>().data(),
                                   din[1] ? din[1]->data<float>().data() : nullptr, dk_fresh,
                                   has_bias_ && din[2] ? din[2]->data<float>().data() : nullptr, db_fresh);
      return;
    }
    if (din[0] && fresh[0]) std::memset(din[0]->raw(), 0, din[0]->nbytes());
    if (g_.N == 0) {  // no chunk runs: fresh gradients are written here (zeros)
      if (dk_fresh) std::memset(din[1]->raw(), 0, din[1]->nbytes());
      if (db_fresh) std::memset(din[2]->raw(), 0, din[2]->nbytes());
      return;
    }
    if (!chunk_buffers_) allocate_chunk_buffers();  // once: dx of a convolution that took the direct path
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      const T* k = in[1].data<T>().data();
      const T* g = dout.data<T>().data();
      const T* y = out.data<T>().data();
      T* dx = din[0] ? din[0]->data<T>().data() : nullptr;
      T* dk = din[1] ? din[1]->data<T>().data() : nullptr;
      T* db = has_bias_ && din[2] ? din[2]->data<T>().data() : nullptr;
      bool first_chunk = true;
      // Chunk by chunk, so that dkernel's product, db's sum and dx's product read a chunk of dout
      // while it is in cache.
      each_chunk([&](std::int64_t unit0, std::int64_t units) {
        const bool dk_write = dk_fresh && first_chunk, db_write = db_fresh && first_chunk;
        first_chunk = false;
        const std::int64_t rows = units * pool_.PH * g_.OW;
        const T* gc = g + unit0 * g_.OW * O_;
        if (pool_.on()) {  // dout of the unpooled chunk: the pooled dout at each window's maximum
          T* m = masked_.data<T>().data();
          const std::int64_t per_line = pool_.QW * O_, line_rows = pool_.PH * g_.OW * O_;
          for (std::int64_t u = 0; u < units; ++u) {
            const std::int64_t at = (unit0 + u) * per_line;
            detail::unpool_line(pool_, g_.OW, O_, g + at, y + at, arg_.data() + at, relu_, m + u * line_rows);
          }
          gc = m;
        } else if (relu_) {  // through the ReLU: dout where y > 0, else 0 (the derivative at 0 is 0)
          const T* yc = y + unit0 * g_.OW * O_;
          T* m = masked_.data<T>().data();
          for (std::int64_t i = 0; i < rows * O_; ++i) {
            const T gi = gc[i];
            m[i] = yc[i] > 0 ? gi : T(0);
          }
          gc = m;
        }
        if (db) {  // db [O] += Σ_rows dout
          if (db_write) std::fill(db, db + O_, T(0));
          for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t o = 0; o < O_; ++o) db[o] += gc[r * O_ + o];
        }
        if (dk)  // dkernel [K, O] += colsᵀ · dout
          matmul(true, false, K_, O_, rows, T(1), patches<T>(x, unit0, units), K_, gc, O_, T(dk_write ? 0 : 1), dk, O_);
        if (!dx) return;
        if (direct_) {  // dx [rows, C] += dout · kernelᵀ
          matmul(false, true, rows, K_, O_, T(1), gc, O_, k, O_, T(1), dx + unit0 * g_.OW * K_, K_);
          return;
        }
        // dcols = dout · kernelᵀ into the patch buffer (its patches were used above), then scattered.
        T* dcols = cols_.data<T>().data();
        matmul(false, true, rows, K_, O_, T(1), gc, O_, k, O_, T(0), dcols, K_);
        if (contiguous()) {
          col2im(g_, dcols, first_line(unit0), units * pool_.PH, dx);
          return;
        }
        for (std::int64_t u = 0; u < units; ++u)
          col2im(g_, dcols + u * pool_.PH * g_.OW * K_, first_line(unit0 + u), pool_.PH, dx);
      });
    });
  }

 private:
  // The first convolution line of unit u.
  std::int64_t first_line(std::int64_t u) const { return (u / pool_.QH) * g_.OH + (u % pool_.QH) * pool_.PH; }
  // Whether consecutive units are consecutive lines (no line of an image left out): then a
  // chunk's lines are one run, gathered and scattered at once.
  bool contiguous() const { return pool_.QH * pool_.PH == g_.OH; }
  // fn(first unit, units) for each chunk of units.
  template <class Fn>
  void each_chunk(Fn&& fn) const {
    const std::int64_t units = g_.N * pool_.QH;
    for (std::int64_t u = 0; u < units; u += chunk_units_) fn(u, std::min(chunk_units_, units - u));
  }
  // The patches of `units` chunk units from unit0: x itself for a direct (1x1, stride 1) conv.
  template <class T>
  const T* patches(const T* x, std::int64_t unit0, std::int64_t units) {
    if (direct_) return x + unit0 * g_.OW * K_;
    T* cols = cols_.data<T>().data();
    if (contiguous()) {
      im2col(g_, x, first_line(unit0), units * pool_.PH, cols);
      return cols;
    }
    for (std::int64_t u = 0; u < units; ++u)
      im2col(g_, x, first_line(unit0 + u), pool_.PH, cols + u * pool_.PH * g_.OW * K_);
    return cols;
  }

  // The patch buffer and the chunk of unpooled outputs or of dout (each empty where not needed).
  void allocate_chunk_buffers() {
    chunk_buffers_ = true;
    if (g_.N == 0) return;
    const std::int64_t rows = chunk_units_ * pool_.PH * g_.OW;
    if (!direct_) cols_ = Array::empty({rows, K_}, dtype_);
    if (relu_ || pool_.on()) masked_ = Array::empty({rows, O_}, dtype_);
  }

  Window2d g_;
  std::int64_t O_, K_;
  bool has_bias_, relu_;
  detail::FusedPool pool_;
  DType dtype_;
  bool direct_, one_channel_;
  bool chunk_buffers_ = false;
  std::int64_t chunk_units_;
  Array cols_;    // [chunk rows, K]: the patches of one chunk, then their gradients
  Array masked_;  // [chunk rows, O]: pooled, one chunk's unpooled outputs (forward); with relu or
                  // pooled, one chunk of dout through them (backward)
  std::vector<std::uint8_t> arg_;  // pooled: each output's window maximum (+ kArgSlack bytes)
};

Var conv(Var x, Var kernel, const Var* bias, const Conv2dOptions& options) {
  Graph& graph = bias ? check_operands("conv2d", {x, kernel, *bias}) : check_operands("conv2d", {x, kernel});
  const Shape& ks = kernel.shape();
  if (ks.rank() != 4)
    detail::fail("conv2d", "the kernel has shape " + ks.to_string() + "; it needs 4 dimensions [KH, KW, C_in, C_out] (HWIO)");
  for (int d = 0; d < 4; ++d)
    if (ks[d] < 1)
      detail::fail("conv2d", "the kernel has shape " + ks.to_string() + "; KH, KW, C_in and C_out must be >= 1");
  const Window2d g = detail::window_2d("conv2d", "kernel", x.shape(), {ks[0], ks[1]}, options.strides, options.padding);
  if (ks[2] != g.C)
    detail::fail("conv2d", "the input has " + std::to_string(g.C) + " channels (shape " + x.shape().to_string() +
                               ") but the kernel expects C_in = " + std::to_string(ks[2]) + " (shape " + ks.to_string() +
                               ")");
  const std::int64_t O = ks[3];
  if (bias && bias->shape() != Shape{O})
    detail::fail("conv2d", "the bias has shape " + bias->shape().to_string() + "; expected [" + std::to_string(O) +
                               "] (C_out)");
  const auto [ph, pw] = options.max_pool;
  const auto pool_text = [&] { return "max_pool (" + std::to_string(ph) + ", " + std::to_string(pw) + ")"; };
  if (ph < 1 || pw < 1) detail::fail("conv2d", pool_text() + "; each extent must be >= 1 ({1, 1}: no pooling)");
  if (ph > g.OH || pw > g.OW)
    detail::fail("conv2d", pool_text() + " on the convolution's output of (" + std::to_string(g.OH) + ", " +
                               std::to_string(g.OW) + ") (H, W): the window must fit, each extent <= the output's");
  if (ph * pw > 256)
    detail::fail("conv2d", pool_text() + " has " + std::to_string(ph * pw) +
                               " elements; a fused pool takes at most 256 (use max_pool() after conv2d())");
  const detail::FusedPool pool{ph, pw, g.OH / ph, g.OW / pw};
  auto op = std::make_unique<Conv2d>(g, O, bias != nullptr, options.relu, pool, x.dtype());
  Shape shape{g.N, pool.QH, pool.QW, O};
  if (bias) return graph.apply(std::move(op), {x, kernel, *bias}, std::move(shape), x.dtype());
  return graph.apply(std::move(op), {x, kernel}, std::move(shape), x.dtype());
}

}  // namespace

Var conv2d(Var x, Var kernel, Conv2dOptions options) { return conv(x, kernel, nullptr, options); }
Var conv2d(Var x, Var kernel, Var bias, Conv2dOptions options) { return conv(x, kernel, &bias, options); }

}  // namespace datarax::nn
