// AVX-512 helpers nn's matrix-product kernels share (gemm_f32.cc, gemm_bf16.cc): lane masks, a
// 16 x 16 transpose of 32-bit lanes (their packing), the store of a finished C tile, and C = beta·C
// for a product with nothing to sum. Compiled for AVX-512 by a per-function target
// attribute: call them only from code that has checked the CPU.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace datarax::nn::detail::avx512 {

// The first n of 16 lanes.
inline __mmask16 first(std::int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : static_cast<__mmask16>((1u << n) - 1);
}

// out[c] = lane c of every in[r]: a 16 × 16 transpose of 32-bit lanes (unpack 32, unpack 64, then
// two rounds of 128-bit lane shuffles). GCC 12's unpack intrinsics start from
// _mm512_undefined_epi32(), a self-initialized variable its own -Wmaybe-uninitialized then flags
// once inlined: silenced here, and only here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) inline void transpose16(const __m512i (&in)[16], __m512i (&out)[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(in[i], in[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(in[i], in[i + 1]);
  }
  // u[4g + c], 128-bit lane j: rows 4g..4g+3 at column 4j + c.
  for (int g = 0; g < 16; g += 4) {
    u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), w0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
    const __m512i v1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88),
                  w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    out[c] = _mm512_shuffle_i32x4(v0, v1, 0x88);
    out[4 + c] = _mm512_shuffle_i32x4(w0, w1, 0x88);
    out[8 + c] = _mm512_shuffle_i32x4(v0, v1, 0xDD);
    out[12 + c] = _mm512_shuffle_i32x4(w0, w1, 0xDD);
  }
}
#pragma GCC diagnostic pop

// C [M, N] = beta · C, as BLAS: beta 0 writes zeros without reading C (NaNs there do not survive).
// Plain code (no AVX-512): the kernels' answer to a product with nothing to sum.
inline void scale_c(std::int64_t M, std::int64_t N, float beta, float* C, std::int64_t ldc) {
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0F ? 0.0F : beta * C[i * ldc + j];
}

// C tile [rows <= MR, cols <= 16·NB] = alpha · acc + beta · C, row-major with row length ldc, as
// BLAS: beta 0 never reads C (NaNs there do not survive); lanes past cols are not touched.
template <int MR, int NB>
__attribute__((target("avx512f"), always_inline)) inline void store_tile(const __m512 (&acc)[MR][NB], float* c,
                                                                          std::int64_t ldc, std::int64_t rows,
                                                                          std::int64_t cols, float alpha, float beta) {
  __mmask16 m[NB];
#pragma GCC unroll 2
  for (int j = 0; j < NB; ++j) m[j] = first(cols - 16 * j);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) {
      float* cij = c + i * ldc + 16 * j;
      __m512 v = alpha == 1.0F ? acc[i][j] : _mm512_mul_ps(va, acc[i][j]);
      if (beta == 1.0F)
        v = _mm512_add_ps(_mm512_maskz_loadu_ps(m[j], cij), v);
      else if (beta != 0.0F)
        v = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m[j], cij)), v);
      _mm512_mask_storeu_ps(cij, m[j], v);
    }
  }
}

}  // namespace datarax::nn::detail::avx512
