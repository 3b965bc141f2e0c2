// conv2d's fused max pool (conv_pool.h): plain loops for any CPU and f64, 16 channels a vector on
// AVX-512 for f32.
#include "nn/ops/conv_pool.h"

#include <immintrin.h>

#include <algorithm>

#include "nn/avx512_tile.h"
#include "nn/gemm.h"

#define DATARAX_POOL_TARGET __attribute__((target("avx512f")))

namespace datarax::nn::detail {

namespace {

// The offset in the unpooled line of window position e of pooled column qw.
inline std::int64_t offset(const FusedPool& p, std::int64_t OW, std::int64_t O, std::int64_t qw, std::int64_t e) {
  return ((e / p.PW) * OW + qw * p.PW + e % p.PW) * O;
}

template <class T>
void pool_plain(const FusedPool& p, std::int64_t OW, std::int64_t O, const T* y, const T* b, bool relu, T* out,
                std::uint8_t* arg) {
  for (std::int64_t qw = 0; qw < p.QW; ++qw, out += O, arg += O)
    for (std::int64_t o = 0; o < O; ++o) {
      // No bias: y itself (adding 0 would turn -0 into +0, which the unfused op keeps).
      const auto at_e = [&](std::int64_t e) { return b ? y[offset(p, OW, O, qw, e) + o] + b[o] : y[offset(p, OW, O, qw, e) + o]; };
      T best = at_e(0);
      std::uint8_t at = 0;
      for (std::int64_t e = 1; e < p.PH * p.PW; ++e) {
        const T v = at_e(e);
        if (v > best) best = v, at = static_cast<std::uint8_t>(e);  // strict: the first maximum stays
      }
      out[o] = relu ? std::max(best, T(0)) : best;
      arg[o] = at;
    }
}

template <class T>
void unpool_plain(const FusedPool& p, std::int64_t OW, std::int64_t O, const T* dout, const T* out,
                  const std::uint8_t* arg, bool relu, T* g) {
  std::fill(g, g + p.PH * OW * O, T(0));
  for (std::int64_t qw = 0; qw < p.QW; ++qw, dout += O, out += O, arg += O)
    for (std::int64_t o = 0; o < O; ++o)
      if (!relu || out[o] > 0) g[offset(p, OW, O, qw, arg[o]) + o] = dout[o];
}

// GCC 12's _mm512_max_ps starts from _mm512_undefined_ps(), which its own -Wmaybe-uninitialized
// flags once inlined: silenced for this file's kernels (as conv_direct.cc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

DATARAX_POOL_TARGET void pool_avx512(const FusedPool& p, std::int64_t OW, std::int64_t O, const float* y,
                                     const float* b, bool relu, float* out, std::uint8_t* arg) {
  const __m512 zero = _mm512_setzero_ps();
  for (std::int64_t qw = 0; qw < p.QW; ++qw, out += O, arg += O)
    for (std::int64_t o = 0; o < O; o += 16) {
      const __mmask16 m = avx512::first(O - o);
      const __m512 bo = b ? _mm512_maskz_loadu_ps(m, b + o) : zero;
      // No bias: y itself (adding 0 would turn -0 into +0, which the unfused op keeps).
      const auto at_e = [&](std::int64_t e) DATARAX_POOL_TARGET {
        const __m512 v = _mm512_maskz_loadu_ps(m, y + offset(p, OW, O, qw, e) + o);
        return b ? _mm512_add_ps(v, bo) : v;
      };
      __m512 best = at_e(0);
      __m512i at = _mm512_setzero_si512();
      for (std::int64_t e = 1; e < p.PH * p.PW; ++e) {
        const __m512 v = at_e(e);
        const __mmask16 more = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, more, v);
        at = _mm512_mask_mov_epi32(at, more, _mm512_set1_epi32(static_cast<int>(e)));
      }
      _mm512_mask_storeu_ps(out + o, m, relu ? _mm512_max_ps(zero, best) : best);  // NaN stays NaN, as std::max(v, 0)
      _mm512_mask_cvtepi32_storeu_epi8(arg + o, m, at);
    }
}

DATARAX_POOL_TARGET void unpool_avx512(const FusedPool& p, std::int64_t OW, std::int64_t O, const float* dout,
                                       const float* out, const std::uint8_t* arg, bool relu, float* g) {
  std::fill(g, g + p.PH * OW * O, 0.0f);
  const __m512 zero = _mm512_setzero_ps();
  for (std::int64_t qw = 0; qw < p.QW; ++qw, dout += O, out += O, arg += O)
    for (std::int64_t o = 0; o < O; o += 16) {
      __mmask16 m = avx512::first(O - o);
      if (relu) m = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, out + o), zero, _CMP_GT_OQ);
      const __m512 d = _mm512_maskz_loadu_ps(m, dout + o);
      const __m512i at = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(arg + o)));
      for (std::int64_t e = 0; e < p.PH * p.PW; ++e)
        _mm512_mask_storeu_ps(g + offset(p, OW, O, qw, e) + o,
                              _mm512_mask_cmpeq_epi32_mask(m, at, _mm512_set1_epi32(static_cast<int>(e))), d);
    }
}

#pragma GCC diagnostic pop

}  // namespace

void pool_line(const FusedPool& p, std::int64_t OW, std::int64_t O, const float* y, const float* b, bool relu,
               float* out, std::uint8_t* arg) {
  if (cpu_has_avx512f())
    pool_avx512(p, OW, O, y, b, relu, out, arg);
  else
    pool_plain(p, OW, O, y, b, relu, out, arg);
}
void pool_line(const FusedPool& p, std::int64_t OW, std::int64_t O, const double* y, const double* b, bool relu,
               double* out, std::uint8_t* arg) {
  pool_plain(p, OW, O, y, b, relu, out, arg);
}

void unpool_line(const FusedPool& p, std::int64_t OW, std::int64_t O, const float* dout, const float* out,
                 const std::uint8_t* arg, bool relu, float* g) {
  if (cpu_has_avx512f())
    unpool_avx512(p, OW, O, dout, out, arg, relu, g);
  else
    unpool_plain(p, OW, O, dout, out, arg, relu, g);
}
void unpool_line(const FusedPool& p, std::int64_t OW, std::int64_t O, const double* dout, const double* out,
                 const std::uint8_t* arg, bool relu, double* g) {
  unpool_plain(p, OW, O, dout, out, arg, relu, g);
}

}  // namespace datarax::nn::detail
