// bf16 matrix products (datarax/nn/precision.h) against references that do not use them.
//
// The tolerances come from bf16's format. bf16 keeps 8 significant bits, so rounding x to bf16
// (to nearest) moves it by at most u·|x|, u = 2^-8. A product of two rounded operands is off by at
// most (2u + u²)·|a·b| = (2^-7 + 2^-16)·|a·b|, and summing K products in f32 adds at most about
// K·2^-24 of Σ|a·b| (we allow (K + 2)·2^-23, twice that). So, elementwise:
//   against the exact product of the f32 operands:   |got − exact| ≤ (2^-7 + 2^-16 + (K + 2)·2^-23)·Σ|a·b|
//   against the exact product of the bf16-rounded operands (rounded here by datarax::bfloat16, not by
//   the code under test):                            |got − exact_bf16| ≤ (K + 2)·2^-23·Σ|a·b|
// The second, tight one catches a wrong element, pair or transpose in the packing; the first is
// the promise made to users. A third check makes sure the bf16 path ran at all: its error against
// the exact f32 product must be far above f32's own.
#include "datarax/nn/precision.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <span>
#include <thread>

#include "datarax/half.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/matmul_kernel.h"
#include "datarax/spmd.h"
#include "nn/count_allocations.h"
#include "nn/gradcheck.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using test::uniform;

// These tests hold the VDPBF16PS kernel to the bf16 recipe, so they run it whatever kernel this
// CPU's measurement would choose for bf16 (matmul_kernel.h; matmul_kernel_test.cc tests the choice).
#define SKIP_WITHOUT_BF16()                                                                \
  if (!cpu_supports(Precision::bf16)) GTEST_SKIP() << "this CPU has no AVX512_BF16 (VDPBF16PS)"; \
  set_matmul_kernel(Precision::bf16, MatmulKernel::avx512_bf16)

constexpr double kU = 0x1p-8;  // bf16's unit roundoff

// The kernels this CPU has that round their operands to bf16 (matmul_kernel.h), the reference first.
std::vector<MatmulKernel> bf16_kernels() {
  std::vector<MatmulKernel> out;
  for (MatmulKernel k : matmul_kernel_candidates(Precision::bf16))
    if (rounds_to_bf16(k)) out.push_back(k);
  return out;
}


double bf16_round(double x) { return static_cast<float>(bfloat16(static_cast<float>(x))); }

// Σ_k a(i, k)·b(k, j) for every i, j, with |·| summed beside it; `round` maps each operand first.
struct Product {
  std::vector<double> value, abs_sum;
};
template <class A, class B, class R>
Product naive_product(int M, int N, int K, A a, B b, R round) {
  Product p{std::vector<double>(static_cast<std::size_t>(M) * N), std::vector<double>(static_cast<std::size_t>(M) * N)};
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0, abs = 0;
      for (int k = 0; k < K; ++k) {
        const double t = round(a(i, k)) * round(b(k, j));
        s += t;
        abs += std::abs(t);
      }
      p.value[static_cast<std::size_t>(i) * N + j] = s;
      p.abs_sum[static_cast<std::size_t>(i) * N + j] = abs;
    }
  return p;
}

struct Errors {
  double worst_vs_bf16 = 0;   // max |got − exact_bf16| / ((K + 2)·2^-23·Σ|a·b|): must be <= 1
  double worst_vs_f32 = 0;    // max |got − exact| / ((2^-7 + 2^-16 + (K + 2)·2^-23)·Σ|a·b|): <= 1
  double largest_rel = 0;     // max |got − exact| / Σ|a·b|: far above f32's rounding if bf16 ran
};

// got = offset + product, checked elementwise; `offset` (a bias, or the old C) is exact in both.
template <class A, class B>
Errors check_product(const std::vector<float>& got, const std::vector<double>& offset, int M, int N, int K, A a, B b) {
  const Product exact = naive_product(M, N, K, a, b, [](double x) { return x; });
  const Product rounded = naive_product(M, N, K, a, b, bf16_round);
  const double f32_sum = (K + 2) * 0x1p-23;
  Errors e;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double abs = exact.abs_sum[i] + std::abs(offset[i]) + 1e-30;
    const double abs16 = rounded.abs_sum[i] + std::abs(offset[i]) + 1e-30;
    e.worst_vs_bf16 = std::max(e.worst_vs_bf16, std::abs(got[i] - (offset[i] + rounded.value[i])) / (f32_sum * abs16));
    const double err = std::abs(got[i] - (offset[i] + exact.value[i]));
    e.worst_vs_f32 = std::max(e.worst_vs_f32, err / ((2 * kU + kU * kU + f32_sum) * abs));
    e.largest_rel = std::max(e.largest_rel, err / abs);
  }
  return e;
}


void expect_within(const Errors& e, const std::string& what) {
  SCOPED_TRACE(what);
  std::printf("  %-40s error / bound: vs bf16 operands %.3f, vs f32 operands %.3f; largest relative %.2e\n",
              what.c_str(), e.worst_vs_bf16, e.worst_vs_f32, e.largest_rel);
  EXPECT_LE(e.worst_vs_bf16, 1.0);
  EXPECT_LE(e.worst_vs_f32, 1.0);
  EXPECT_GT(e.largest_rel, 1e-4) << "no bf16 rounding seen: did the f32 path run?";
}

// Shapes at and across the blocking's edges: 12-row and 32-column tiles, K blocks of 256, A blocks
// of 192 rows, B blocks of 1024 columns; odd K (a half pair); 1 × 1 × 1.
// The largest is left out of the ThreadSanitizer build, whose pass is about threads: its naive f64
// references took 18 of that pass's seconds, at the end of it; the normal pass checks it.
const std::vector<std::array<int, 3>> kShapes = {{1, 1, 1},     {3, 5, 4},      {13, 33, 3},   {12, 32, 256},
                                                 {25, 65, 257}, {7, 10, 513},
#ifndef __SANITIZE_THREAD__
                                                 {200, 1100, 530}
#endif
};





// The three products of a dense layer through nn::matmul under a bf16 scope: forward (onto the
// bias), the input gradient, and the weight gradient added to an old one.
// Every bf16 kernel this CPU has (VDPBF16PS; oneDNN's matmul where built with it) is held to it.
TEST(Bf16Matmul, LayerProductsAreTheProductOfBf16OperandsWithinTheirBound) {
  SKIP_WITHOUT_BF16();
  const std::vector<MatmulKernel> kernels = bf16_kernels();
  EXPECT_EQ(kernels.front(), MatmulKernel::avx512_bf16);
  for (MatmulKernel kernel : kernels)
  for (auto [B, in, out] : kShapes) {
    set_matmul_kernel(Precision::bf16, kernel);
    SCOPED_TRACE(std::string(to_string(kernel)));
    const auto x = test::to_float(uniform(static_cast<std::size_t>(B) * in, -1, 1, 1));
    const auto w = test::to_float(uniform(static_cast<std::size_t>(in) * out, -1, 1, 2));
    const auto bias = test::to_float(uniform(static_cast<std::size_t>(out), -1, 1, 3));
    const auto dout = test::to_float(uniform(static_cast<std::size_t>(B) * out, -1, 1, 6));
    const auto dw0 = test::to_float(uniform(static_cast<std::size_t>(in) * out, -1, 1, 7));
    std::vector<float> y, dinp(static_cast<std::size_t>(B) * in, 99.0F), dw = dw0;
    for (int b = 0; b < B; ++b) y.insert(y.end(), bias.begin(), bias.end());
    {
      const MatmulPrecisionScope bf16(Precision::bf16);
      matmul(false, false, B, out, in, 1.0f, x.data(), in, w.data(), out, 1.0f, y.data(), out);
      matmul(false, true, B, in, out, 1.0f, dout.data(), out, w.data(), out, 0.0f, dinp.data(), in);
      matmul(true, false, in, out, B, 1.0f, x.data(), in, dout.data(), out, 1.0f, dw.data(), out);
    }
    std::vector<double> offset;
    for (int b = 0; b < B; ++b) offset.insert(offset.end(), bias.begin(), bias.end());
    const std::string shape = std::to_string(B) + "x" + std::to_string(in) + "->" + std::to_string(out);
    expect_within(check_product(
                      y, offset, B, out, in, [&](int i, int k) { return double{x[static_cast<std::size_t>(i) * in + k]}; },
                      [&](int k, int j) { return double{w[static_cast<std::size_t>(k) * out + j]}; }),
                  "forward " + shape);
    expect_within(check_product(
                      dinp, std::vector<double>(dinp.size(), 0.0), B, in, out,
                      [&](int i, int k) { return double{dout[static_cast<std::size_t>(i) * out + k]}; },
                      [&](int k, int j) { return double{w[static_cast<std::size_t>(j) * out + k]}; }),
                  "dinp " + shape);
    expect_within(check_product(
                      dw, std::vector<double>(dw0.begin(), dw0.end()), in, out, B,
                      [&](int i, int k) { return double{x[static_cast<std::size_t>(k) * in + i]}; },
                      [&](int k, int j) { return double{dout[static_cast<std::size_t>(k) * out + j]}; }),
                  "dweight " + shape);
  }
}

// nn::matmul, the public matrix product: every transpose, alpha and beta, against the naive
// product in f64 (f64: 1e-12; f32: 1e-5 of Σ|a·b|; bf16: the bound above), and its argument checks.
TEST(Matmul, EveryTransposeMatchesTheNaiveProduct) {
  const int M = 13, N = 37, K = 29;
  const double alpha = 0.75, beta = -0.5;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string("ta ") + (ta ? "T" : "N") + " tb " + (tb ? "T" : "N"));
      const int lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 3, ldc = N + 1;
      const auto a = uniform(static_cast<std::size_t>((ta ? K : M) * lda), -1, 1, 21);
      const auto b = uniform(static_cast<std::size_t>((tb ? N : K) * ldb), -1, 1, 22);
      const auto c0 = uniform(static_cast<std::size_t>(M * ldc), -1, 1, 23);
      auto at = [&](int i, int k) { return ta ? a[static_cast<std::size_t>(k * lda + i)] : a[static_cast<std::size_t>(i * lda + k)]; };
      auto bt = [&](int k, int j) { return tb ? b[static_cast<std::size_t>(j * ldb + k)] : b[static_cast<std::size_t>(k * ldb + j)]; };
      const Product want = naive_product(M, N, K, at, bt, [](double x) { return x; });
      std::vector<double> c64 = c0;
      matmul(ta, tb, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, c64.data(), ldc);
      const auto a32 = test::to_float(a), b32 = test::to_float(b);
      std::vector<float> c32 = test::to_float(c0);
      matmul(ta, tb, M, N, K, static_cast<float>(alpha), a32.data(), lda, b32.data(), ldb, static_cast<float>(beta),
             c32.data(), ldc);
      std::vector<float> c16 = test::to_float(c0);
      if (cpu_supports(Precision::bf16)) {
        set_matmul_kernel(Precision::bf16, MatmulKernel::avx512_bf16);
        const MatmulPrecisionScope bf16(Precision::bf16);
        matmul(ta, tb, M, N, K, static_cast<float>(alpha), a32.data(), lda, b32.data(), ldb, static_cast<float>(beta),
               c16.data(), ldc);
      }
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < ldc; ++j) {
          const std::size_t at_c = static_cast<std::size_t>(i * ldc + j);
          if (j >= N) {  // past the row: untouched
            EXPECT_EQ(c64[at_c], c0[at_c]);
            EXPECT_EQ(c32[at_c], static_cast<float>(c0[at_c]));
            EXPECT_EQ(c16[at_c], static_cast<float>(c0[at_c]));
            continue;
          }
          const std::size_t w = static_cast<std::size_t>(i * N + j);
          const double exact = alpha * want.value[w] + beta * c0[at_c];
          const double scale = std::abs(alpha) * want.abs_sum[w] + std::abs(beta * c0[at_c]);
          EXPECT_NEAR(c64[at_c], exact, 1e-12 * scale);
          EXPECT_NEAR(c32[at_c], exact, 1e-5 * scale);
          if (cpu_supports(Precision::bf16)) {
            EXPECT_NEAR(c16[at_c], exact, (2 * kU + kU * kU + (K + 2) * 0x1p-23) * scale + 1e-7);
          }
        }
    }
}

TEST(Matmul, BadExtentsAreRefusedByName) {
  std::vector<float> x(64, 1.0F);
  EXPECT_THAT(datarax::test::error_of([&] { matmul(false, false, -1, 2, 2, 1.0F, x.data(), 2, x.data(), 2, 0.0F, x.data(), 2); }),
              HasSubstr("matmul"));
  EXPECT_THAT(datarax::test::error_of([&] { matmul(false, false, 2, 4, 3, 1.0F, x.data(), 2, x.data(), 4, 0.0F, x.data(), 4); }),
              HasSubstr("matmul: lda = 2; valid: the stored row length, from 3 to 2147483647"));
  EXPECT_THAT(datarax::test::error_of([&] { matmul(false, true, 2, 4, 3, 1.0F, x.data(), 3, x.data(), 2, 0.0F, x.data(), 4); }),
              HasSubstr("matmul: ldb = 2; valid: the stored row length, from 3"));
  EXPECT_THAT(datarax::test::error_of([&] { matmul(false, false, 2, 4, 3, 1.0F, x.data(), 3, x.data(), 4, 0.0F, x.data(), 3); }),
              HasSubstr("matmul: ldc = 3; valid: the stored row length, from 4"));
  EXPECT_THAT(datarax::test::error_of([&] {
                matmul(false, false, 2, std::int64_t{1} << 31, 3, 1.0F, x.data(), 3, x.data(), 4, 0.0F, x.data(), 4);
              }),
              HasSubstr("matmul"));
}

TEST(MatmulPrecision, ScopesNestAndBelongToTheirThread) {
  SKIP_WITHOUT_BF16();
  EXPECT_EQ(matmul_precision(), Precision::f32);
  {
    const MatmulPrecisionScope outer(Precision::bf16);
    EXPECT_EQ(matmul_precision(), Precision::bf16);
    Precision other = Precision::bf16;
    std::thread([&] { other = matmul_precision(); }).join();
    EXPECT_EQ(other, Precision::f32);
    {
      const MatmulPrecisionScope inner(Precision::f32);
      EXPECT_EQ(matmul_precision(), Precision::f32);
    }
    EXPECT_EQ(matmul_precision(), Precision::bf16);
  }
  EXPECT_EQ(matmul_precision(), Precision::f32);
}

// Every bf16 kernel gives the same bits on any thread, also with two threads at once (each keeps
// its own buffers, and oneDNN's kernel its own primitives), and a repeated product allocates
// nothing — except through oneDNN's execute, which builds its argument map on the heap (7
// allocations a product with oneDNN 2.6): held to at most 16 here, so that a primitive made anew
// per call (hundreds) fails.
TEST(Bf16Matmul, EveryBf16KernelGivesTheSameBitsOnEveryThreadAndAllocatesAsDocumented) {
  SKIP_WITHOUT_BF16();
  struct P {
    bool ta, tb;
    int M, N, K;
  };
  const P products[] = {{false, false, 64, 96, 80}, {false, true, 33, 70, 48}, {true, false, 50, 40, 65}};
  const auto a = test::to_float(uniform(96 * 96, -1, 1, 41));
  const auto b = test::to_float(uniform(96 * 96, -1, 1, 42));
  const auto run_all = [&](std::vector<std::vector<float>>& out) {
    const MatmulPrecisionScope bf16(Precision::bf16);
    for (std::size_t i = 0; i < std::size(products); ++i) {
      const P& p = products[i];
      out[i].assign(static_cast<std::size_t>(p.M) * p.N, 0.0F);
      matmul(p.ta, p.tb, p.M, p.N, p.K, 0.5F, a.data(), p.ta ? p.M : p.K, b.data(), p.tb ? p.K : p.N, 0.0F,
             out[i].data(), p.N);
    }
  };
  for (MatmulKernel kernel : bf16_kernels()) {
    SCOPED_TRACE(std::string(to_string(kernel)));
    set_matmul_kernel(Precision::bf16, kernel);
    std::vector<std::vector<float>> want(std::size(products));
    run_all(want);
    std::vector<std::vector<std::vector<float>>> got(2, std::vector<std::vector<float>>(std::size(products)));
    for (int round = 0; round < 3; ++round) {
      std::thread t1([&] { run_all(got[0]); });
      std::thread t2([&] { run_all(got[1]); });
      t1.join();
      t2.join();
      for (const auto& g : got)
        for (std::size_t i = 0; i < std::size(products); ++i) ASSERT_EQ(g[i], want[i]) << "product " << i;
    }
    std::vector<std::vector<float>> again(std::size(products));
    run_all(again);  // sizes the vectors: the count below is the products' own
    const long before = datarax::test::allocation_count();
    for (int r = 0; r < 10; ++r) run_all(again);
    const double per_product = static_cast<double>(datarax::test::allocation_count() - before) / (10.0 * std::size(products));
    if (kernel == MatmulKernel::onednn_bf16) {
      EXPECT_LE(per_product, 16.0);
    } else {
      EXPECT_EQ(per_product, 0.0);
    }
    std::printf("  %s: %.1f allocations a product after its first\n", std::string(to_string(kernel)).c_str(), per_product);
  }
}

TEST(MatmulPrecision, NamesParseAndBadOnesAreRefused) {
  EXPECT_EQ(parse_precision("f32"), Precision::f32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_EQ(to_string(Precision::bf16), "bf16");
  for (const char* bad : {"", "BF16", "fp16", "f32 ", "bfloat16"})
    EXPECT_THAT(datarax::test::error_of([&] { parse_precision(bad); }),
                HasSubstr("unknown precision \"" + std::string(bad) + "\"; valid: f32, bf16"));
}

// A CPU without AVX512_BF16 (pretended through DATARAX_CPU_NO_BF16=1): bf16 is refused with the
// reason, at the scope; f32 still works.
TEST(MatmulPrecision, Bf16IsRefusedOnACpuWithoutIt) {
  ASSERT_EQ(setenv("DATARAX_CPU_NO_BF16", "1", 1), 0);
  EXPECT_FALSE(cpu_supports(Precision::bf16));
  EXPECT_TRUE(cpu_supports(Precision::f32));
  const std::string why = datarax::test::error_of([] { const MatmulPrecisionScope s(Precision::bf16); });
  EXPECT_THAT(why, HasSubstr("MatmulPrecisionScope: precision bf16 needs a CPU with AVX512_BF16"));
  EXPECT_THAT(why, HasSubstr("valid here: f32"));
  EXPECT_THROW({ const MatmulPrecisionScope s(Precision::bf16); }, UnsupportedError);
  EXPECT_EQ(matmul_precision(), Precision::f32);
  ASSERT_EQ(unsetenv("DATARAX_CPU_NO_BF16"), 0);
}

}  // namespace
}  // namespace datarax::nn
