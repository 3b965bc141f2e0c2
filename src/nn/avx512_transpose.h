// AVX-512 helpers the packing of nn's matrix-product kernels shares (gemm_f32.cc, gemm_bf16.cc):
// lane masks and a 16 x 16 transpose of 32-bit lanes. Compiled for AVX-512 by a per-function target
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

}  // namespace datarax::nn::detail::avx512
