// nn's one matrix-product interface, the call every layer makes:
//   C [M, N] = alpha · op(A) · op(B) + beta · C
// row-major, op(X) = Xᵀ when trans_x; lda, ldb, ldc are the row lengths as stored (at least the
// rows' widths). float products follow the calling thread's matmul_precision() (precision.h) and
// the kernel chosen for that precision on this CPU (matmul_kernel.h: OpenBLAS's sgemm, datarax's
// AVX-512 f32 kernel or its AVX512_BF16 kernel); double products are OpenBLAS's dgemm. With
// beta = 0, C is only written (as BLAS: NaNs in it do not survive). With M or N 0 nothing is read
// or written, and the row lengths are not checked.
// Extents from 0 to 2^31 - 1; anything else throws InvalidArgumentError naming the extent.
#pragma once

#include <cstdint>

namespace datarax::nn {

void matmul(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
            std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc);
void matmul(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
            const double* A, std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C,
            std::int64_t ldc);

}  // namespace datarax::nn
