// bf16 matrix products on AVX512_BF16: f32 operands rounded to bf16 (to nearest, ties to even) as
// they are packed, products summed in f32 by VDPBF16PS, f32 result.
//
// The blocking is BLIS's, shrunk to this library's shapes (a batch of ~128 rows, widths in the
// hundreds): B is packed a block of K × N at a time into panels of 32 columns, A a block of M × K
// into panels of 12 rows, and a 12 × 32 tile of C lives in 24 registers while one panel pair
// streams through. Both operands are packed as bf16 pairs along K — the element VDPBF16PS
// multiplies — so one 32-bit broadcast of A meets 16 pairs of B per instruction. The packing
// buffers belong to the calling thread and are allocated on its first call: afterwards a product
// allocates nothing.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "datarax/error.h"
#include "nn/avx512_tile.h"
#include "nn/gemm.h"

#define DATARAX_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace datarax::nn::detail {

namespace {

using avx512::first;
using avx512::transpose16;

constexpr int kMr = 12;                  // rows of A in a panel (and of the C tile)
constexpr int kNr = 32;                  // columns of B in a panel (two registers of 16; 16 when N <= 16)
constexpr std::int64_t kKcPairs = 128;   // a K block: 256 values, 128 pairs
constexpr std::int64_t kMc = 16 * kMr;   // rows of A packed at once
constexpr std::int64_t kNc = 32 * kNr;   // columns of B packed at once

struct FreeDeleter {
  void operator()(std::uint32_t* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<std::uint32_t[], FreeDeleter>;

Buffer allocate(std::size_t words) {
  void* p = std::aligned_alloc(64, words * sizeof(std::uint32_t));
  if (p == nullptr) throw std::bad_alloc();
  return Buffer(static_cast<std::uint32_t*>(p));
}

// The calling thread's packing buffers (96 KiB for A, 512 KiB for B).
struct Workspace {
  Buffer a = allocate(static_cast<std::size_t>(kMc * kKcPairs));
  Buffer b = allocate(static_cast<std::size_t>(kKcPairs * kNc));
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}


// Packs `lines` lines (<= w) whose values run contiguously along K — line r's k-th value at
// src[r * ld + k], k < kc — into a panel of w lines: dst[p * w + r] holds the bf16 pair (k = 2p,
// 2p + 1) of line r; an odd kc's last pair and the lines past `lines` are zero. 16 lines × 16
// pairs at a time: converted line by line, then transposed in registers.
DATARAX_BF16_TARGET void pack_along_k(const float* src, std::int64_t ld, std::int64_t lines, std::int64_t kc,
                                      std::uint32_t* dst, int w) {
  const std::int64_t pairs = (kc + 1) / 2;
  __m512i in[16], out[16];
  for (int r0 = 0; r0 < w; r0 += 16) {
    const __mmask16 store = first(w - r0);
    for (std::int64_t k = 0; k < kc; k += 32) {
      const __mmask16 lo = first(kc - k), hi = first(kc - k - 16);
      for (int r = 0; r < 16; ++r) {
        if (r0 + r >= lines) {
          in[r] = _mm512_setzero_si512();
          continue;
        }
        const float* p = src + (r0 + r) * ld + k;
        // bf16 lanes 0..15 from the first 16 values, 16..31 from the next: 32-bit lane l is the
        // pair (2l, 2l + 1).
        in[r] = reinterpret_cast<__m512i>(
            _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, p + 16), _mm512_maskz_loadu_ps(lo, p)));
      }
      transpose16(in, out);
      const std::int64_t n = std::min<std::int64_t>(16, pairs - k / 2);
      for (std::int64_t l = 0; l < n; ++l) _mm512_mask_storeu_epi32(dst + (k / 2 + l) * w + r0, store, out[l]);
    }
  }
}

// Packs `count` lines whose values run contiguously across them — line r's k-th value at
// src[k * ld + r] — into panels of w lines, one after another, each in pack_along_k's layout (the
// pair (2p, 2p + 1) of line r of panel q at dst[q * pairs * w + p * w + r]). Row pair by row pair,
// every panel's slice at once: the source is read in whole rows, in order.
DATARAX_BF16_TARGET void pack_across_k(const float* src, std::int64_t ld, std::int64_t count, std::int64_t kc,
                                       std::uint32_t* dst, int w) {
  // Interleaves the bf16 of two rows: lane 2i from row k (lanes 0..15), 2i + 1 from row k + 1.
  alignas(64) static constexpr std::uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                                                21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                                                11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(kInterleave);
  const std::int64_t pairs = (kc + 1) / 2;
  for (std::int64_t p = 0; p < pairs; ++p) {
    const float* r0 = src + (2 * p) * ld;
    const float* r1 = r0 + ld;
    const bool has_r1 = 2 * p + 1 < kc;
    for (std::int64_t q = 0; q * w < count; ++q) {
      const std::int64_t lines = std::min<std::int64_t>(w, count - q * w);
      std::uint32_t* d = dst + q * pairs * w + p * w;
      for (int g = 0; g < w; g += 16) {
        const __mmask16 m = first(lines - g);
        const std::int64_t at = q * w + g;
        const __m512 a = _mm512_maskz_loadu_ps(m, r0 + at);
        const __m512 b = has_r1 ? _mm512_maskz_loadu_ps(m, r1 + at) : _mm512_setzero_ps();
        const __m512i v = _mm512_permutexvar_epi16(idx, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
        _mm512_mask_storeu_epi32(d + g, first(w - g), v);
      }
    }
  }
}

// Packs `count` lines (rows of A, or columns of B) into panels of w lines, one after another:
// line r's k-th value at m[r * ld + k] when along_k, else at m[k * ld + r].
void pack_panels(const float* m, std::int64_t ld, bool along_k, std::int64_t count, std::int64_t kc,
                 std::uint32_t* dst, int w) {
  if (!along_k) {
    pack_across_k(m, ld, count, kc, dst, w);
    return;
  }
  const std::int64_t pairs = (kc + 1) / 2;
  for (std::int64_t p = 0; p < count; p += w)
    pack_along_k(m + p * ld, ld, std::min<std::int64_t>(w, count - p), kc, dst + (p / w) * pairs * w, w);
}

// C tile [rows <= 12, cols <= 16·NB] = beta · C + alpha · A panel · B panel over `pairs` pairs of
// K; B's panel is 16·NB columns wide (NB = 2, or 1 for a product of at most 16 columns).
template <int NB>
DATARAX_BF16_TARGET void kernel(std::int64_t pairs, const std::uint32_t* a, const std::uint32_t* b, float* c,
                                std::int64_t ldc, std::int64_t rows, std::int64_t cols, float alpha, float beta) {
  __m512 acc[kMr][NB];
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_ps();
  for (std::int64_t p = 0; p < pairs; ++p) {
    __m512bh bv[NB];
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) bv[j] = reinterpret_cast<__m512bh>(_mm512_load_si512(b + 16 * j));
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i) {
      const __m512bh ai = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a[i])));
#pragma GCC unroll 2
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], ai, bv[j]);
    }
    a += kMr;
    b += 16 * NB;
  }
  avx512::store_tile<kMr, NB>(acc, c, ldc, rows, cols, alpha, beta);
}

}  // namespace

bool cpu_has_bf16_dot() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  }();
  return has;
}

void gemm_bf16(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
               std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  if (!cpu_has_bf16_dot()) throw UnsupportedError("gemm_bf16: this CPU has no AVX512_BF16 (VDPBF16PS)");
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0F) {  // a sum of nothing (BLAS reads no operand when alpha is 0)
    avx512::scale_c(M, N, beta, C, ldc);
    return;
  }
  Workspace& ws = workspace();
  const int nr = N <= 16 ? 16 : kNr;  // a narrow product (the classifier's 10 columns) takes 16-wide panels
  for (std::int64_t jc = 0; jc < N; jc += kNc) {
    const std::int64_t nc = std::min(kNc, N - jc);
    for (std::int64_t pc = 0; pc < K; pc += 2 * kKcPairs) {
      const std::int64_t kc = std::min(2 * kKcPairs, K - pc);
      const std::int64_t pairs = (kc + 1) / 2;
      const float beta_block = pc == 0 ? beta : 1.0F;
      // B block [kc, nc]: element (k, j) at B[k * ldb + j], or B[j * ldb + k] when transposed.
      pack_panels(trans_b ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, trans_b, nc, kc, ws.b.get(), nr);
      for (std::int64_t ic = 0; ic < M; ic += kMc) {
        const std::int64_t mc = std::min(kMc, M - ic);
        // A block [mc, kc]: element (i, k) at A[i * lda + k], or A[k * lda + i] when transposed.
        pack_panels(trans_a ? A + pc * lda + ic : A + ic * lda + pc, lda, !trans_a, mc, kc, ws.a.get(), kMr);
        for (std::int64_t jp = 0; jp < nc; jp += nr) {
          const std::uint32_t* bp = ws.b.get() + (jp / nr) * pairs * nr;
          for (std::int64_t ip = 0; ip < mc; ip += kMr)
            (nr == kNr ? kernel<2> : kernel<1>)(pairs, ws.a.get() + (ip / kMr) * pairs * kMr, bp,
                                                C + (ic + ip) * ldc + jc + jp, ldc, std::min<std::int64_t>(kMr, mc - ip),
                                                std::min<std::int64_t>(nr, nc - jp), alpha, beta_block);
        }
      }
    }
  }
}

}  // namespace datarax::nn::detail
