// The matrix-product kernels and their choice (nn/matmul_kernel.h): every kernel this CPU can run,
// forced in turn, against the naive product in f64 on shapes across every block edge of the
// packing (rows past 192, columns past 512, K past 256, narrow and single ones), with transposes,
// padded row lengths, alpha and beta; the choice's rule; the environment's forcing and its
// refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "datarax/error.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/matmul_kernel.h"
#include "nn/gradcheck.h"

namespace datarax::nn {
namespace {

using test::uniform;

struct Case {
  int M, N, K;
};

// The bound of each kernel's error against the exact product, relative to Σ|a·b| (+|β·c|): f32
// kernels sum K products rounded to 2^-24 each (a bound of (K+2)·2^-23 is loose and cannot be met
// by a wrong result); bf16 rounds each operand to 8 bits first (2·2^-8 + 2^-16) and sums in f32.
double bound(MatmulKernel k, int K) {
  const double f32 = (K + 2) * 0x1p-23;
  return rounds_to_bf16(k) ? 2 * 0x1p-8 + 0x1p-16 + f32 : f32;
}

TEST(MatmulKernels, EveryKernelOnThisCpuMatchesTheNaiveProductAcrossBlockEdges) {
  const Case cases[] = {{1, 1, 1}, {13, 37, 29}, {12, 32, 256}, {193, 17, 257}, {200, 530, 300}, {128, 10, 512}, {5, 16, 1},
                        // partial panels of 2, 3 and 4 rows after whole ones (the packing's 16-lane edge)
                        {14, 40, 33}, {27, 48, 7}, {28, 64, 300}, {204, 33, 260}};
  for (Precision p : {Precision::f32, Precision::bf16}) {
    if (!cpu_supports(p)) continue;
    for (MatmulKernel kernel : matmul_kernel_candidates(p)) {
      set_matmul_kernel(p, kernel);
      for (const Case& cs : cases)
        for (bool ta : {false, true})
          for (bool tb : {false, true}) {
            const int M = cs.M, N = cs.N, K = cs.K;
            SCOPED_TRACE(std::string(to_string(kernel)) + " " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                         std::to_string(K) + (ta ? " Ta" : " Na") + (tb ? " Tb" : " Nb"));
            const int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
            const auto a = test::to_float(uniform(static_cast<std::size_t>((ta ? K : M) * lda), -1, 1, 31));
            const auto b = test::to_float(uniform(static_cast<std::size_t>((tb ? N : K) * ldb), -1, 1, 32));
            const float alpha = 0.75F, beta = ta ? -0.5F : 0.0F;
            // With beta 0, C is only written: NaNs in it must not survive (BLAS's rule).
            auto c0 = test::to_float(uniform(static_cast<std::size_t>(M * ldc), -1, 1, 33));
            if (beta == 0.0F)
              for (int i = 0; i < M; ++i)
                for (int j = 0; j < N; ++j) c0[static_cast<std::size_t>(i) * ldc + j] = std::nanf("");
            std::vector<float> c = c0;
            {
              const MatmulPrecisionScope scope(p);
              matmul(ta, tb, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
            }
            double worst = 0;
            for (int i = 0; i < M; ++i)
              for (int j = 0; j < ldc; ++j) {
                const std::size_t at = static_cast<std::size_t>(i) * ldc + j;
                if (j >= N) {
                  ASSERT_EQ(c[at], c0[at]) << "wrote past the row at " << i << "," << j;
                  continue;
                }
                double s = 0, abs = 0;
                for (int k = 0; k < K; ++k) {
                  const double x = ta ? a[static_cast<std::size_t>(k) * lda + i] : a[static_cast<std::size_t>(i) * lda + k];
                  const double y = tb ? b[static_cast<std::size_t>(j) * ldb + k] : b[static_cast<std::size_t>(k) * ldb + j];
                  s += x * y;
                  abs += std::abs(x * y);
                }
                const double cij = beta == 0.0F ? 0.0 : c0[at];
                const double exact = alpha * s + beta * cij;
                const double scale = std::abs(alpha) * abs + std::abs(beta * cij);
                const double err = std::abs(c[at] - exact) / (scale + 1e-30);
                worst = std::max(worst, err);
                ASSERT_LE(std::abs(c[at] - exact), bound(kernel, K) * scale + 1e-30) << "at " << i << "," << j;
              }
            EXPECT_LE(worst, bound(kernel, K));
          }
      unset_matmul_kernel(p);
    }
  }
}

TEST(MatmulKernels, TheChoiceIsTheReferenceUnlessAnotherIsTenPercentFaster) {
  const MatmulShape shapes[] = {{false, false, 64, 128, 96}, {false, true, 64, 96, 128}, {true, false, 96, 128, 64}};
  for (Precision p : {Precision::f32, Precision::bf16}) {
    if (!cpu_supports(p)) continue;
    const KernelChoice c = choose_matmul_kernel(p, shapes);
    const std::vector<MatmulKernel> candidates = matmul_kernel_candidates(p);
    ASSERT_EQ(c.timings.size(), candidates.size());
    EXPECT_FALSE(c.forced);
    const KernelChoice::Timing ref = c.timings.front();
    EXPECT_EQ(ref.kernel, p == Precision::f32 ? MatmulKernel::openblas : MatmulKernel::avx512_bf16);
    double best = 0;
    MatmulKernel fastest = ref.kernel;
    for (const auto& t : c.timings) {
      EXPECT_GT(t.gflops, 0) << to_string(t.kernel);
      if (t.gflops > best) {
        best = t.gflops;
        fastest = t.kernel;
      }
    }
    EXPECT_EQ(c.kernel, best >= 1.10 * ref.gflops ? fastest : ref.kernel) << c.reason;
    EXPECT_EQ(matmul_kernel(p), c.kernel);
    EXPECT_NE(c.reason.find(std::string(to_string(c.kernel))), std::string::npos) << c.reason;
    if (p == Precision::bf16 && !rounds_to_bf16(c.kernel)) {
      EXPECT_NE(c.reason.find("no bf16 kernel beats f32 on this CPU"), std::string::npos) << c.reason;
    }
    unset_matmul_kernel(p);
  }
}

TEST(MatmulKernels, AForcedKernelStaysAndTheEnvironmentForcesOrIsRefused) {
  set_matmul_kernel(Precision::f32, MatmulKernel::openblas);
  const MatmulShape one[] = {{false, false, 8, 8, 8}};
  EXPECT_TRUE(choose_matmul_kernel(Precision::f32, one).forced);
  EXPECT_EQ(matmul_kernel(Precision::f32), MatmulKernel::openblas);
  EXPECT_THROW(set_matmul_kernel(Precision::f32, MatmulKernel::avx512_bf16), Error);  // not an f32 kernel
  EXPECT_THROW(set_matmul_kernel(Precision::f32, MatmulKernel::onednn_bf16), Error);  // nor this
  unset_matmul_kernel(Precision::f32);

  ASSERT_EQ(setenv("DATARAX_MATMUL_KERNEL_F32", "openblas", 1), 0);
  const KernelChoice forced = matmul_kernel_choice(Precision::f32);
  EXPECT_TRUE(forced.forced);
  EXPECT_EQ(forced.kernel, MatmulKernel::openblas);
  EXPECT_NE(forced.reason.find("DATARAX_MATMUL_KERNEL_F32"), std::string::npos) << forced.reason;
  unset_matmul_kernel(Precision::f32);

  ASSERT_EQ(setenv("DATARAX_MATMUL_KERNEL_F32", "avx512_bf16", 1), 0);
  try {
    (void)matmul_kernel(Precision::f32);
    FAIL() << "an f32 product accepted the bf16 kernel";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("a bf16 kernel, not one for f32 products; valid here: openblas"),
              std::string::npos) << e.what();
  }
  unset_matmul_kernel(Precision::f32);
  ASSERT_EQ(setenv("DATARAX_MATMUL_KERNEL_F32", "mkl", 1), 0);
  try {
    (void)matmul_kernel(Precision::f32);
    FAIL() << "an unknown kernel name was accepted";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("DATARAX_MATMUL_KERNEL_F32=mkl: unknown kernel; valid: openblas, avx512, avx512_bf16, onednn_bf16"), std::string::npos) << e.what();
  }
  ASSERT_EQ(unsetenv("DATARAX_MATMUL_KERNEL_F32"), 0);
  unset_matmul_kernel(Precision::f32);
  EXPECT_FALSE(matmul_kernel_choice(Precision::f32).forced);
}

TEST(MatmulKernels, NamesRoundTripAndBadShapesAreRefused) {
  for (MatmulKernel k : {MatmulKernel::openblas, MatmulKernel::avx512, MatmulKernel::avx512_bf16, MatmulKernel::onednn_bf16})
    EXPECT_EQ(parse_matmul_kernel(to_string(k)), k);
  EXPECT_THROW(parse_matmul_kernel("AVX512"), InvalidArgumentError);
  const MatmulShape bad[] = {{false, false, 0, 4, 4}};
  EXPECT_THROW(choose_matmul_kernel(Precision::f32, bad), InvalidArgumentError);
}

}  // namespace
}  // namespace datarax::nn
