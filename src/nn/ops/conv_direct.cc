// conv2d's direct path for one input channel and a 3x3 kernel (conv_direct.h), 32 output channels
// (two zmm registers) at a time: the forward holds the 9 taps × 2 registers of kernel; the backward
// 9 × 2 registers of dkernel and 2 of dbias, so that neither touches memory but for x, y and dout
// (and, pooled, the maxima's positions).
#include "nn/ops/conv_direct.h"

#include <immintrin.h>

#include <algorithm>

#include "nn/avx512_tile.h"
#include "nn/gemm.h"

#define DATARAX_DIRECT_TARGET __attribute__((target("avx512f,fma")))

namespace datarax::nn::detail {

namespace {

// GCC 12's _mm512_max_ps starts from _mm512_undefined_ps(), which its own -Wmaybe-uninitialized
// flags once inlined (as avx512_tile.h's transpose16): silenced for this file's kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

constexpr int kTaps = 9;  // 3 x 3

// Which of the 3 rows (columns) of the window at `first` fall inside an extent.
struct Inside {
  bool at[3];
  bool all;
};
inline Inside inside(std::int64_t first, std::int64_t extent) {
  Inside r{};
  for (int i = 0; i < 3; ++i) r.at[i] = first + i >= 0 && first + i < extent;
  r.all = r.at[0] && r.at[1] && r.at[2];
  return r;
}

// d = v (fresh) or d += v, on the lanes of mask.
DATARAX_DIRECT_TARGET inline void put(float* d, bool fresh, __m512 v, __mmask16 mask) {
  if (!fresh) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, d));
  _mm512_mask_storeu_ps(d, mask, v);
}

// The window's (kh, kw) taps that fall inside the image, at output position (oh, ow).
struct At {
  const float* image;  // x of the image
  std::int64_t ih, iw;
  Inside rows, cols;
  bool all;
  At(const Window2d& g, const float* img, std::int64_t oh, std::int64_t ow)
      : image(img), ih(g.first_row(oh)), iw(g.first_col(ow)), rows(inside(ih, g.H)), cols(inside(iw, g.W)),
        all(rows.all && cols.all) {}
};

// fn(tap, x at that tap broadcast) for each tap (kh · 3 + kw) of the window at `at` inside the
// image. fn must carry DATARAX_DIRECT_TARGET (a lambda's body is a function of its own).
template <class Fn>
DATARAX_DIRECT_TARGET inline void each_tap(const Window2d& g, const At& at, Fn&& fn) {
#pragma GCC unroll 3
  for (int kh = 0; kh < 3; ++kh)
#pragma GCC unroll 3
    for (int kw = 0; kw < 3; ++kw) {
      if (!at.all && !(at.rows.at[kh] && at.cols.at[kw])) continue;
      fn(kh * 3 + kw, _mm512_set1_ps(at.image[(at.ih + kh) * g.W + at.iw + kw]));
    }
}

// Pooled: each output position is a window of PH x PW convolution outputs, of which the first
// maximum (a strictly greater value replaces it, as max_pool's forward) is kept with its position.
// Unpooled: PH = PW = 1 and the window is the position itself.
template <bool Pooled>
DATARAX_DIRECT_TARGET void forward_block(const Window2d& g, std::int64_t O, std::int64_t ob, const float* x,
                                         const float* k, const float* b, bool relu, const FusedPool& pool, float* y,
                                         std::uint8_t* arg) {
  const __mmask16 m[2] = {avx512::first(O - ob), avx512::first(O - ob - 16)};
  __m512 kt[kTaps][2];
#pragma GCC unroll 9
  for (int t = 0; t < kTaps; ++t)
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) kt[t][j] = _mm512_maskz_loadu_ps(m[j], k + t * O + ob + 16 * j);
  __m512 bias[2];
  for (int j = 0; j < 2; ++j) bias[j] = b ? _mm512_maskz_loadu_ps(m[j], b + ob + 16 * j) : _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  const std::int64_t PH = Pooled ? pool.PH : 1, PW = Pooled ? pool.PW : 1;
  const std::int64_t QH = Pooled ? pool.QH : g.OH, QW = Pooled ? pool.QW : g.OW;
  for (std::int64_t n = 0; n < g.N; ++n) {
    const float* image = x + n * g.H * g.W;
    for (std::int64_t qh = 0; qh < QH; ++qh) {
      const std::int64_t at0 = ((n * QH + qh) * QW) * O + ob;
      float* out = y + at0;
      std::uint8_t* where = Pooled ? arg + at0 : nullptr;
      for (std::int64_t qw = 0; qw < QW; ++qw, out += O) {
        __m512 best[2];
        __m512i pos[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        for (std::int64_t e = 0; e < PH * PW; ++e) {
          __m512 acc[2] = {bias[0], bias[1]};
          each_tap(g, At(g, image, qh * PH + e / PW, qw * PW + e % PW), [&](int t, __m512 xv) DATARAX_DIRECT_TARGET {
#pragma GCC unroll 2
            for (int j = 0; j < 2; ++j) acc[j] = _mm512_fmadd_ps(xv, kt[t][j], acc[j]);
          });
          if (!Pooled || e == 0) {
            best[0] = acc[0], best[1] = acc[1];
            continue;
          }
#pragma GCC unroll 2
          for (int j = 0; j < 2; ++j) {
            const __mmask16 more = _mm512_cmp_ps_mask(acc[j], best[j], _CMP_GT_OQ);
            best[j] = _mm512_mask_mov_ps(best[j], more, acc[j]);
            pos[j] = _mm512_mask_mov_epi32(pos[j], more, _mm512_set1_epi32(static_cast<int>(e)));
          }
        }
#pragma GCC unroll 2
        for (int j = 0; j < 2; ++j) {
          _mm512_mask_storeu_ps(out + 16 * j, m[j], relu ? _mm512_max_ps(zero, best[j]) : best[j]);  // NaN stays NaN, as std::max(y, 0)
          if constexpr (Pooled) {
            _mm512_mask_cvtepi32_storeu_epi8(where + 16 * j, m[j], pos[j]);
          }
        }
        if constexpr (Pooled) where += O;
      }
    }
  }
}

template <bool Pooled>
DATARAX_DIRECT_TARGET void backward_block(const Window2d& g, std::int64_t O, std::int64_t ob, const float* x,
                                          const float* y, bool relu, const FusedPool& pool, const std::uint8_t* arg,
                                          const float* dout, float* dk, bool dk_fresh, float* db, bool db_fresh) {
  const __mmask16 m[2] = {avx512::first(O - ob), avx512::first(O - ob - 16)};
  __m512 dkt[kTaps][2], dbv[2];
#pragma GCC unroll 9
  for (int t = 0; t < kTaps; ++t)
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) dkt[t][j] = _mm512_setzero_ps();
  dbv[0] = dbv[1] = _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  const std::int64_t PH = Pooled ? pool.PH : 1, PW = Pooled ? pool.PW : 1;
  const std::int64_t QH = Pooled ? pool.QH : g.OH, QW = Pooled ? pool.QW : g.OW;
  for (std::int64_t n = 0; n < g.N; ++n) {
    const float* image = x + n * g.H * g.W;
    for (std::int64_t qh = 0; qh < QH; ++qh) {
      const std::int64_t at0 = ((n * QH + qh) * QW) * O + ob;
      const float* gr = dout + at0;
      const float* yr = y + at0;
      const std::uint8_t* where = Pooled ? arg + at0 : nullptr;
      for (std::int64_t qw = 0; qw < QW; ++qw, gr += O, yr += O) {
        __m512 gv[2];
        __m512i pos[2];
#pragma GCC unroll 2
        for (int j = 0; j < 2; ++j) {
          gv[j] = _mm512_maskz_loadu_ps(m[j], gr + 16 * j);
          if (relu) gv[j] = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(m[j], _mm512_maskz_loadu_ps(m[j], yr + 16 * j), zero, _CMP_GT_OQ), gv[j]);
          dbv[j] = _mm512_add_ps(dbv[j], gv[j]);
          // 16 bytes whatever m[j] says (AVX-512F has no masked byte load): arg is allocated kArgSlack
          // bytes longer (conv_pool.h), and the lanes past O carry a zero gradient anyway.
          if constexpr (Pooled) pos[j] = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(where + 16 * j)));
        }
        if constexpr (Pooled) where += O;
        for (std::int64_t e = 0; e < PH * PW; ++e) {
          __m512 ge[2] = {gv[0], gv[1]};
          if constexpr (Pooled) {
#pragma GCC unroll 2
            for (int j = 0; j < 2; ++j)
              ge[j] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(pos[j], _mm512_set1_epi32(static_cast<int>(e))), gv[j]);
          }
          each_tap(g, At(g, image, qh * PH + e / PW, qw * PW + e % PW), [&](int t, __m512 xv) DATARAX_DIRECT_TARGET {
#pragma GCC unroll 2
            for (int j = 0; j < 2; ++j) dkt[t][j] = _mm512_fmadd_ps(xv, ge[j], dkt[t][j]);
          });
        }
      }
    }
  }
  for (int j = 0; j < 2; ++j) {
    if (dk)
      for (int t = 0; t < kTaps; ++t) put(dk + t * O + ob + 16 * j, dk_fresh, dkt[t][j], m[j]);
    if (db) put(db + ob + 16 * j, db_fresh, dbv[j], m[j]);
  }
}

#pragma GCC diagnostic pop

}  // namespace

bool conv_direct_applies(const Window2d& g, DType dtype) {
  return dtype == DType::f32 && g.C == 1 && g.KH == 3 && g.KW == 3 && cpu_has_avx512f();
}

void conv_direct_forward(const Window2d& g, std::int64_t O, const float* x, const float* k, const float* b, bool relu,
                         const FusedPool& pool, float* y, std::uint8_t* arg) {
  for (std::int64_t ob = 0; ob < O; ob += 32)
    if (pool.on())
      forward_block<true>(g, O, ob, x, k, b, relu, pool, y, arg);
    else
      forward_block<false>(g, O, ob, x, k, b, relu, pool, y, arg);
}

void conv_direct_backward(const Window2d& g, std::int64_t O, const float* x, const float* y, bool relu,
                          const FusedPool& pool, const std::uint8_t* arg, const float* dout, float* dk, bool dk_fresh,
                          float* db, bool db_fresh) {
  if (dk == nullptr && db == nullptr) return;
  for (std::int64_t ob = 0; ob < O; ob += 32)
    if (pool.on())
      backward_block<true>(g, O, ob, x, y, relu, pool, arg, dout, dk, dk_fresh, db, db_fresh);
    else
      backward_block<false>(g, O, ob, x, y, relu, pool, arg, dout, dk, dk_fresh, db, db_fresh);
}

}  // namespace datarax::nn::detail
