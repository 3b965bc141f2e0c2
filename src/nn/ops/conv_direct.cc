// conv2d's direct path for one input channel and a 3x3 kernel (conv_direct.h), 32 output channels
// (two zmm registers) at a time: the forward holds the 9 taps × 2 registers of kernel; the backward
// 9 × 2 registers of dkernel and 2 of dbias, so that neither touches memory but for x, y and dout.
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

DATARAX_DIRECT_TARGET void forward_block(const Window2d& g, std::int64_t O, std::int64_t ob, const float* x,
                                         const float* k, const float* b, bool relu, float* y) {
  const __mmask16 m[2] = {avx512::first(O - ob), avx512::first(O - ob - 16)};
  __m512 kt[kTaps][2];
#pragma GCC unroll 9
  for (int t = 0; t < kTaps; ++t)
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) kt[t][j] = _mm512_maskz_loadu_ps(m[j], k + t * O + ob + 16 * j);
  __m512 bias[2];
  for (int j = 0; j < 2; ++j) bias[j] = b ? _mm512_maskz_loadu_ps(m[j], b + ob + 16 * j) : _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  for (std::int64_t n = 0; n < g.N; ++n) {
    const float* image = x + n * g.H * g.W;
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const std::int64_t ih = g.first_row(oh);
      const Inside rows = inside(ih, g.H);
      float* out = y + ((n * g.OH + oh) * g.OW) * O + ob;
      for (std::int64_t ow = 0; ow < g.OW; ++ow, out += O) {
        const std::int64_t iw = g.first_col(ow);
        const Inside cols = inside(iw, g.W);
        const bool all = rows.all && cols.all;
        __m512 acc[2] = {bias[0], bias[1]};
#pragma GCC unroll 3
        for (int kh = 0; kh < 3; ++kh)
#pragma GCC unroll 3
          for (int kw = 0; kw < 3; ++kw) {
            if (!all && !(rows.at[kh] && cols.at[kw])) continue;
            const __m512 xv = _mm512_set1_ps(image[(ih + kh) * g.W + iw + kw]);
#pragma GCC unroll 2
            for (int j = 0; j < 2; ++j) acc[j] = _mm512_fmadd_ps(xv, kt[kh * 3 + kw][j], acc[j]);
          }
#pragma GCC unroll 2
        for (int j = 0; j < 2; ++j) _mm512_mask_storeu_ps(out + 16 * j, m[j], relu ? _mm512_max_ps(zero, acc[j]) : acc[j]);  // NaN stays NaN, as std::max(y, 0)
      }
    }
  }
}

DATARAX_DIRECT_TARGET void backward_block(const Window2d& g, std::int64_t O, std::int64_t ob, const float* x,
                                          const float* y, bool relu, const float* dout, float* dk, bool dk_fresh,
                                          float* db, bool db_fresh) {
  const __mmask16 m[2] = {avx512::first(O - ob), avx512::first(O - ob - 16)};
  __m512 dkt[kTaps][2], dbv[2];
#pragma GCC unroll 9
  for (int t = 0; t < kTaps; ++t)
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) dkt[t][j] = _mm512_setzero_ps();
  dbv[0] = dbv[1] = _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  for (std::int64_t n = 0; n < g.N; ++n) {
    const float* image = x + n * g.H * g.W;
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const std::int64_t ih = g.first_row(oh);
      const Inside rows = inside(ih, g.H);
      const std::int64_t at = ((n * g.OH + oh) * g.OW) * O + ob;
      const float* gr = dout + at;
      const float* yr = y + at;
      for (std::int64_t ow = 0; ow < g.OW; ++ow, gr += O, yr += O) {
        const std::int64_t iw = g.first_col(ow);
        const Inside cols = inside(iw, g.W);
        const bool all = rows.all && cols.all;
        __m512 gv[2];
#pragma GCC unroll 2
        for (int j = 0; j < 2; ++j) {
          gv[j] = _mm512_maskz_loadu_ps(m[j], gr + 16 * j);
          if (relu) gv[j] = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(m[j], _mm512_maskz_loadu_ps(m[j], yr + 16 * j), zero, _CMP_GT_OQ), gv[j]);
          dbv[j] = _mm512_add_ps(dbv[j], gv[j]);
        }
#pragma GCC unroll 3
        for (int kh = 0; kh < 3; ++kh)
#pragma GCC unroll 3
          for (int kw = 0; kw < 3; ++kw) {
            if (!all && !(rows.at[kh] && cols.at[kw])) continue;
            const __m512 xv = _mm512_set1_ps(image[(ih + kh) * g.W + iw + kw]);
#pragma GCC unroll 2
            for (int j = 0; j < 2; ++j) dkt[kh * 3 + kw][j] = _mm512_fmadd_ps(xv, gv[j], dkt[kh * 3 + kw][j]);
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
                         float* y) {
  for (std::int64_t ob = 0; ob < O; ob += 32) forward_block(g, O, ob, x, k, b, relu, y);
}

void conv_direct_backward(const Window2d& g, std::int64_t O, const float* x, const float* y, bool relu,
                          const float* dout, float* dk, bool dk_fresh, float* db, bool db_fresh) {
  if (dk == nullptr && db == nullptr) return;
  for (std::int64_t ob = 0; ob < O; ob += 32) backward_block(g, O, ob, x, y, relu, dout, dk, dk_fresh, db, db_fresh);
}

}  // namespace datarax::nn::detail
