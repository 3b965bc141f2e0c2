// The one call into CBLAS for nn's layers: row-major general matrix products in float or double.
#pragma once

#include <cblas.h>

#include <climits>
#include <cstdint>
#include <type_traits>

namespace datarax::nn::detail {

// CBLAS takes int extents (OpenBLAS without INTERFACE64).
inline constexpr std::int64_t kMaxBlasDim = INT_MAX;

// C [M, N] = alpha · op(A) · op(B) + beta · C, row-major; lda/ldb/ldc are the row lengths as stored.
template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, i(M), i(N), i(K), alpha, A, i(lda), B, i(ldb), beta, C, i(ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, i(M), i(N), i(K), alpha, A, i(lda), B, i(ldb), beta, C, i(ldc));
}

}  // namespace datarax::nn::detail
