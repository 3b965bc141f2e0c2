#include "datarax/nn/matmul.h"

#include <string>

#include "nn/check.h"
#include "nn/gemm.h"

namespace datarax::nn {

namespace {

template <class T>
void checked(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A, std::int64_t lda,
             const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  constexpr const char* op = "matmul";
  detail::check_dim(op, "M", M, detail::kMaxBlasDim);
  detail::check_dim(op, "N", N, detail::kMaxBlasDim);
  detail::check_dim(op, "K", K, detail::kMaxBlasDim);
  if (M == 0 || N == 0) return;  // nothing to read or write: the row lengths do not matter
  auto check_ld = [&](const char* name, std::int64_t ld, std::int64_t width) {
    if (ld < std::max<std::int64_t>(width, 1) || ld > detail::kMaxBlasDim)
      throw InvalidArgumentError(std::string(op) + ": " + name + " = " + std::to_string(ld) +
                                 "; valid: the stored row length, from " + std::to_string(std::max<std::int64_t>(width, 1)) +
                                 " to 2147483647");
  };
  check_ld("lda", lda, ta ? M : K);
  check_ld("ldb", ldb, tb ? K : N);
  check_ld("ldc", ldc, N);
  if (M == 0 || N == 0) return;
  detail::gemm<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

void matmul(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
            std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  checked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void matmul(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
            const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C,
            std::int64_t ldc) {
  checked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace datarax::nn
