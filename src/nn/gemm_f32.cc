// f32 matrix products on AVX-512 (FMA on 16-lane registers), datarax's own: a candidate beside
// OpenBLAS's sgemm, chosen by measurement (matmul_kernel.cc). It exists because an OpenBLAS build
// that does not know the CPU's model number falls back to an SSE3 kernel (Debian 12's 0.3.21 on
// Intel Emerald Rapids picks "Prescott": 4x slower than its own SkylakeX kernel on the same CPU).
//
// The blocking is BLIS's, as in gemm_bf16.cc: B packed a block of kKc × kNc at a time into panels
// of 32 columns, A (when transposed) a block of kMc × kKc into panels of 12 rows, a 12 × 32 tile
// of C in 24 zmm registers while a panel pair streams through; one FMA per (row, 16 columns, k).
// A that is not transposed is read in place, and so is a transposed A in a narrow product (ARead).
// The packing buffers belong to the calling thread and are allocated on its first call.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "nn/avx512_tile.h"
#include "nn/gemm.h"

#define DATARAX_F32_TARGET __attribute__((target("avx512f,fma")))

namespace datarax::nn::detail {

namespace {

using avx512::first;
using avx512::transpose16;

constexpr int kMr = 12;                // rows of A in a panel (and of the C tile)
constexpr int kNr = 32;                // columns of B in a panel (two registers; 16 when N <= 16)
constexpr std::int64_t kKc = 256;      // a K block
constexpr std::int64_t kMc = 16 * kMr; // rows of A packed at once
constexpr std::int64_t kNc = 16 * kNr; // columns of B packed at once
// A transposed A is packed only where a panel of it meets more than this many B panels. Measured
// on an Intel Xeon (family 6 model 207), 1 thread: in place took a convolution's weight gradient
// (288 x 64 x 742, 2 panels) from 106 to 149 GFLOP/s, and packed kept a GPT's MLP weight gradient
// (1536 x 384 x 2048, 12 panels) at 143, where in place read 106 (its rows 6 KiB apart share a few
// L1 sets).
constexpr std::int64_t kPackAFrom = 2;

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], FreeDeleter>;

Buffer allocate(std::size_t floats) {
  void* p = std::aligned_alloc(64, floats * sizeof(float));
  if (p == nullptr) throw std::bad_alloc();
  return Buffer(static_cast<float*>(p));
}

// The calling thread's packing buffers (192 KiB for A, 512 KiB for B).
struct Workspace {
  Buffer a = allocate(static_cast<std::size_t>(kMc * kKc));
  Buffer b = allocate(static_cast<std::size_t>(kKc * kNc));
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

// Packs `lines` lines (<= w) whose values run along K — line r's k-th value at src[r * ld + k] —
// into a panel of w lines: dst[k * w + r]; lines past `lines` are zero. 16 × 16 at a time,
// transposed in registers.
DATARAX_F32_TARGET void pack_along_k(const float* src, std::int64_t ld, std::int64_t lines, std::int64_t kc, float* dst,
                                     int w) {
  __m512i in[16], out[16];
  for (int r0 = 0; r0 < w; r0 += 16) {
    const __mmask16 store = first(w - r0);
    for (std::int64_t k = 0; k < kc; k += 16) {
      const __mmask16 load = first(kc - k);
      for (int r = 0; r < 16; ++r)
        in[r] = r0 + r < lines ? _mm512_castps_si512(_mm512_maskz_loadu_ps(load, src + (r0 + r) * ld + k))
                               : _mm512_setzero_si512();
      transpose16(in, out);
      const std::int64_t n = std::min<std::int64_t>(16, kc - k);
      for (std::int64_t l = 0; l < n; ++l)
        _mm512_mask_storeu_ps(dst + (k + l) * w + r0, store, _mm512_castsi512_ps(out[l]));
    }
  }
}

// Packs `count` lines whose values run across them — line r's k-th value at src[k * ld + r] —
// into panels of w lines, one after another (panel q's line r, k-th value at
// dst[q * kc * w + k * w + r]); row by row of the source, every panel's slice at once.
DATARAX_F32_TARGET void pack_across_k(const float* src, std::int64_t ld, std::int64_t count, std::int64_t kc, float* dst,
                                      int w) {
  const std::int64_t full = count / w;  // panels of w lines
  for (std::int64_t k = 0; k < kc; ++k) {
    const float* row = src + k * ld;
    const bool last_k = k + 1 == kc;
    for (std::int64_t q = 0; q < full; ++q) {
      float* d = dst + q * kc * w + k * w;
      const float* s = row + q * w;
      if (w == 12) {
        // 16 lanes loaded (where the row has them) and stored: the 4 past the panel's lines land
        // on the next k's (rewritten next), except at the last k, where they would be the next
        // panel's first. Masked loads and stores of 12 lanes ran the packing at half the speed.
        const __m512 v = q * w + 16 <= count ? _mm512_loadu_ps(s) : _mm512_maskz_loadu_ps(first(12), s);
        if (last_k) _mm512_mask_storeu_ps(d, first(12), v);
        else _mm512_storeu_ps(d, v);
      } else {
        for (int g = 0; g < w; g += 16) _mm512_storeu_ps(d + g, _mm512_loadu_ps(s + g));
      }
    }
    if (full * w < count) {
      const std::int64_t lines = count - full * w;
      float* d = dst + full * kc * w + k * w;
      for (int g = 0; g < w; g += 16)
        _mm512_mask_storeu_ps(d + g, first(w - g), _mm512_maskz_loadu_ps(first(lines - g), row + full * w + g));
    }
  }
}

void pack_panels(const float* m, std::int64_t ld, bool along_k, std::int64_t count, std::int64_t kc, float* dst, int w) {
  if (!along_k) {
    pack_across_k(m, ld, count, kc, dst, w);
    return;
  }
  for (std::int64_t p = 0; p < count; p += w)
    pack_along_k(m + p * ld, ld, std::min<std::int64_t>(w, count - p), kc, dst + (p / w) * kc * w, w);
}

// How the kernel reads its 12 rows of A: from a packed panel (value (i, p) at a[p · 12 + i]), in
// place from a row-major A (a[i · lda + p]: A not transposed), or in place from a transposed A
// (a[p · lda + i]: the 12 values of one p side by side, as in a packed panel, but lda apart).
enum class ARead { packed, rows, cols };

// C tile [rows <= 12, cols <= 16·NB] = beta · C + alpha · A · B panel over kc values of K, A read as
// `R` says; in place, rows past `rows` repeat the last row (computed and not stored). The 12 rows'
// values are broadcast one at a time either way, so packing A buys nothing when A is not
// transposed and costs a 16 x 16 transpose per 256 values: measured on an Intel Xeon (family 6
// model 207), in place took an im2col product of a convolution (25088 x 64 x 288) from 80 to
// 131 GFLOP/s and a GPT's (2048 x 384 x 1152) from 137 to 150. A transposed A is packed where its
// panel serves many B panels, and read in place where it serves few (gemm_f32_avx512).
template <int NB, ARead R>
DATARAX_F32_TARGET void kernel(std::int64_t kc, const float* a, std::int64_t lda, const float* b, float* c,
                               std::int64_t ldc, std::int64_t rows, std::int64_t cols, float alpha, float beta) {
  const std::int64_t step = R == ARead::rows ? 1 : R == ARead::cols ? lda : kMr;  // from one p to the next
  __m512 acc[kMr][NB];
  const float* ar[kMr];
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i) {
    const std::int64_t row = R == ARead::packed ? i : std::min<std::int64_t>(i, rows - 1);
    ar[i] = R == ARead::rows ? a + row * lda : a + row;
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  for (std::int64_t p = 0; p < kc; ++p) {
    __m512 bv[NB];
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) bv[j] = _mm512_load_ps(b + 16 * j);
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i) {
      const __m512 ai = _mm512_set1_ps(ar[i][p * step]);
#pragma GCC unroll 2
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
    }
    b += 16 * NB;
  }
  avx512::store_tile<kMr, NB>(acc, c, ldc, rows, cols, alpha, beta);
}

}  // namespace

bool cpu_has_avx512f() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  }();
  return has;
}

void gemm_f32_avx512(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                     const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                     std::int64_t ldc) {
  if (!cpu_has_avx512f()) throw UnsupportedError("gemm_f32_avx512: this CPU has no AVX-512F");
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0F) {  // a sum of nothing (BLAS reads no operand when alpha is 0)
    avx512::scale_c(M, N, beta, C, ldc);
    return;
  }
  Workspace& ws = workspace();
  const int nr = N <= 16 ? 16 : kNr;  // a narrow product (the classifier's 10 columns) takes 16-wide panels
  for (std::int64_t jc = 0; jc < N; jc += kNc) {
    const std::int64_t nc = std::min(kNc, N - jc);
    for (std::int64_t pc = 0; pc < K; pc += kKc) {
      const std::int64_t kc = std::min(kKc, K - pc);
      const float beta_block = pc == 0 ? beta : 1.0F;
      // B block [kc, nc]: element (k, j) at B[k * ldb + j], or B[j * ldb + k] when transposed.
      pack_panels(trans_b ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, trans_b, nc, kc, ws.b.get(), nr);
      // A transposed is packed where each of its panels meets more than kPackAFrom B panels, and
      // read in place (ARead::cols) where it meets fewer: a narrow product's packing is not repaid.
      const bool pack_a = trans_a && nc > kPackAFrom * nr;
      for (std::int64_t ic = 0; ic < M; ic += kMc) {
        const std::int64_t mc = std::min(kMc, M - ic);
        // A block [mc, kc]: element (i, k) at A[i * lda + k] (read in place), or A[k * lda + i]
        // when transposed (packed, or read in place).
        if (pack_a) pack_panels(A + pc * lda + ic, lda, false, mc, kc, ws.a.get(), kMr);
        for (std::int64_t jp = 0; jp < nc; jp += nr) {
          const float* bp = ws.b.get() + (jp / nr) * kc * nr;
          for (std::int64_t ip = 0; ip < mc; ip += kMr) {
            float* ct = C + (ic + ip) * ldc + jc + jp;
            const std::int64_t rows = std::min<std::int64_t>(kMr, mc - ip), cols = std::min<std::int64_t>(nr, nc - jp);
            if (pack_a)
              (nr == kNr ? kernel<2, ARead::packed> : kernel<1, ARead::packed>)(
                  kc, ws.a.get() + (ip / kMr) * kc * kMr, 0, bp, ct, ldc, rows, cols, alpha, beta_block);
            else if (trans_a)
              (nr == kNr ? kernel<2, ARead::cols> : kernel<1, ARead::cols>)(kc, A + pc * lda + ic + ip, lda, bp, ct,
                                                                            ldc, rows, cols, alpha, beta_block);
            else
              (nr == kNr ? kernel<2, ARead::rows> : kernel<1, ARead::rows>)(kc, A + (ic + ip) * lda + pc, lda, bp, ct,
                                                                            ldc, rows, cols, alpha, beta_block);
          }
        }
      }
    }
  }
}

}  // namespace datarax::nn::detail
