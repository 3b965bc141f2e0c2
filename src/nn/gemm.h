// The one call into CBLAS for nn's layers: row-major general matrix products in float or double.
#pragma once

#include <cblas.h>

#include <climits>
#include <cstdint>
#include <string>
#include <type_traits>

#include "datarax/nn/matmul_kernel.h"
#include "datarax/nn/precision.h"

namespace datarax::nn::detail {

// CBLAS takes int extents (OpenBLAS without INTERFACE64).
inline constexpr std::int64_t kMaxBlasDim = INT_MAX;

// Whether this CPU (and its OS) offers AVX512_BF16's VDPBF16PS, which gemm_bf16 needs (asked once).
bool cpu_has_bf16_dot();

// C [M, N] = alpha · op(A) · op(B) + beta · C with op(A) and op(B) rounded to bf16 (to nearest even) and
// the products summed in f32; C stays f32. Needs cpu_has_bf16_dot(). Defined in gemm_bf16.cc.
void gemm_bf16(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
               std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc);

// oneDNN's bf16 matmul (gemm_onednn.cc): whether this datarax was built with oneDNN; whether
// oneDNN runs bf16 products on this CPU (AVX512_BF16 or AMX, the latter once Linux grants the tile
// state, which the first call asks for); one line on oneDNN's version, ISA and the AMX state.
bool onednn_built();
bool cpu_has_onednn_bf16();
std::string onednn_about();
// As gemm_bf16 (the same rounding of the operands, sums in f32), through oneDNN's matmul
// primitive. Needs cpu_has_onednn_bf16().
void gemm_onednn_bf16(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                      const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                      std::int64_t ldc);

// Whether this CPU offers AVX-512F and FMA, which gemm_f32_avx512 needs (asked once).
bool cpu_has_avx512f();

// C [M, N] = alpha · op(A) · op(B) + beta · C in f32 by datarax's AVX-512 kernel. Needs
// cpu_has_avx512f(). Defined in gemm_f32.cc.
void gemm_f32_avx512(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                     const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                     std::int64_t ldc);

// C [M, N] = alpha · op(A) · op(B) + beta · C, row-major; lda/ldb/ldc are the row lengths as stored.
// float products follow the calling thread's matmul_precision() and that precision's kernel
// (matmul_kernel.h).
template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  if constexpr (std::is_same_v<T, float>) {
    switch (matmul_kernel(matmul_precision())) {
      case MatmulKernel::avx512_bf16: gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
      case MatmulKernel::onednn_bf16:
        gemm_onednn_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
      case MatmulKernel::avx512: gemm_f32_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return;
      case MatmulKernel::openblas: break;
    }
    cblas_sgemm(CblasRowMajor, ta, tb, i(M), i(N), i(K), alpha, A, i(lda), B, i(ldb), beta, C, i(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, i(M), i(N), i(K), alpha, A, i(lda), B, i(ldb), beta, C, i(ldc));
  }
}

}  // namespace datarax::nn::detail
