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
#include "datarax/nn/linear.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/matmul_kernel.h"
#include "datarax/nn/parallel_mlp.h"
#include "datarax/spmd.h"
#include "nn/count_allocations.h"
#include "nn/gradcheck.h"
#include "nn/tree_layer_params.h"
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
const std::vector<std::array<int, 3>> kShapes = {{1, 1, 1},     {3, 5, 4},      {13, 33, 3},   {12, 32, 256},
                                                 {25, 65, 257}, {7, 10, 513},   {200, 1100, 530}};

TEST(Bf16Linear, ForwardIsTheProductOfBf16OperandsWithinItsBound) {
  SKIP_WITHOUT_BF16();
  for (auto [B, in, out] : kShapes) {
    const auto x = test::to_float(uniform(static_cast<std::size_t>(B) * in, -1, 1, 1));
    const auto w = test::to_float(uniform(static_cast<std::size_t>(in) * out, -1, 1, 2));
    const auto bias = test::to_float(uniform(static_cast<std::size_t>(out), -1, 1, 3));
    std::vector<float> y(static_cast<std::size_t>(B) * out, 99.0F);
    {
      const MatmulPrecisionScope bf16(Precision::bf16);
      linear_forward(y, x, w, bias, B, in, out);
    }
    std::vector<double> offset;
    for (int b = 0; b < B; ++b) offset.insert(offset.end(), bias.begin(), bias.end());
    expect_within(check_product(
                      y, offset, B, out, in, [&](int i, int k) { return double{x[static_cast<std::size_t>(i) * in + k]}; },
                      [&](int k, int j) { return double{w[static_cast<std::size_t>(k) * out + j]}; }),
                  "forward " + std::to_string(B) + "x" + std::to_string(in) + "->" + std::to_string(out));
  }
}

// Backward: dinp = dout · weightᵀ (the transposed-B product) and dweight += inpᵀ · dout (the
// transposed-A product, accumulated onto what dweight held).
TEST(Bf16Linear, BackwardProductsAreWithinTheirBound) {
  SKIP_WITHOUT_BF16();
  for (auto [B, in, out] : kShapes) {
    const auto x = test::to_float(uniform(static_cast<std::size_t>(B) * in, -1, 1, 4));
    const auto w = test::to_float(uniform(static_cast<std::size_t>(in) * out, -1, 1, 5));
    const auto dout = test::to_float(uniform(static_cast<std::size_t>(B) * out, -1, 1, 6));
    const auto dw0 = test::to_float(uniform(static_cast<std::size_t>(in) * out, -1, 1, 7));
    std::vector<float> dinp(static_cast<std::size_t>(B) * in, 99.0F), dw = dw0, db(static_cast<std::size_t>(out), 0.0F);
    {
      const MatmulPrecisionScope bf16(Precision::bf16);
      linear_backward(dinp, dw, db, dout, x, w, B, in, out);
    }
    const std::string shape = std::to_string(B) + "x" + std::to_string(in) + "->" + std::to_string(out);
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

// Non-finite values go through as IEEE says: an inf operand makes its row inf (or NaN), a NaN
// its row NaN; nothing is flushed to a finite number.
TEST(Bf16Linear, NonFiniteOperandsStayNonFinite) {
  SKIP_WITHOUT_BF16();
  const int B = 3, in = 40, out = 33;
  auto x = test::to_float(uniform(static_cast<std::size_t>(B) * in, -1, 1, 8));
  const auto w = test::to_float(uniform(static_cast<std::size_t>(in) * out, 0.5, 1, 9));  // all positive
  const std::vector<float> bias(out, 0.0F);
  x[5] = INFINITY;                // row 0
  x[in + 7] = std::nanf("");      // row 1
  std::vector<float> y(static_cast<std::size_t>(B) * out);
  const MatmulPrecisionScope bf16(Precision::bf16);
  linear_forward(y, x, w, bias, B, in, out);
  for (int j = 0; j < out; ++j) {
    EXPECT_TRUE(std::isinf(y[static_cast<std::size_t>(j)]) && y[static_cast<std::size_t>(j)] > 0) << j;
    EXPECT_TRUE(std::isnan(y[static_cast<std::size_t>(out + j)])) << j;
    EXPECT_TRUE(std::isfinite(y[static_cast<std::size_t>(2 * out + j)])) << j;
  }
}

// The bf16 recipe written out naively in f64 for a ReLU MLP: every matrix product takes its two
// operands rounded to bf16 (by datarax::bfloat16) and sums exactly; everything else is exact.
// Returns the loss (mean cross-entropy) and fills every parameter's gradient.
double bf16_recipe_reference(const MlpConfig& model, const Tree& params, const std::vector<double>& x,
                             const std::vector<std::int32_t>& y, int B, std::map<std::string, std::vector<double>>& grads) {
  const int L = static_cast<int>(model.sizes.size()) - 1;
  auto param = [&](int l, const char* what) {
    const auto v = params.at("dense_" + std::to_string(l) + "/" + what).data<float>();
    return std::vector<double>(v.begin(), v.end());
  };
  std::vector<std::vector<double>> h{x}, z;  // h[l]: layer l's input; z[l]: its pre-activation
  for (int l = 0; l < L; ++l) {
    const int in = model.sizes[l], out = model.sizes[l + 1];
    const auto w = param(l, "kernel"), b = param(l, "bias");
    std::vector<double> zl(static_cast<std::size_t>(B) * out);
    for (int r = 0; r < B; ++r)
      for (int o = 0; o < out; ++o) {
        double s = 0;
        for (int i = 0; i < in; ++i) s += bf16_round(h[l][r * in + i]) * bf16_round(w[i * out + o]);
        zl[r * out + o] = s + b[o];
      }
    z.push_back(zl);
    if (l + 1 < L) {
      for (double& v : zl) v = std::max(v, 0.0);
      h.push_back(zl);
    }
  }
  const int C = model.sizes.back();
  std::vector<double> dz(static_cast<std::size_t>(B) * C);
  double loss = 0;
  for (int r = 0; r < B; ++r) {
    const double* zr = &z.back()[r * C];
    const double m = *std::max_element(zr, zr + C);
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(zr[c] - m);
    loss += (m + std::log(sum) - zr[y[r]]) / B;
    for (int c = 0; c < C; ++c) dz[r * C + c] = (std::exp(zr[c] - m) / sum - (c == y[r] ? 1.0 : 0.0)) / B;
  }
  for (int l = L - 1; l >= 0; --l) {
    const int in = model.sizes[l], out = model.sizes[l + 1];
    const auto w = param(l, "kernel");
    std::vector<double> dw(static_cast<std::size_t>(in) * out, 0.0), db(static_cast<std::size_t>(out), 0.0);
    for (int i = 0; i < in; ++i)
      for (int o = 0; o < out; ++o)
        for (int r = 0; r < B; ++r) dw[i * out + o] += bf16_round(h[l][r * in + i]) * bf16_round(dz[r * out + o]);
    for (int r = 0; r < B; ++r)
      for (int o = 0; o < out; ++o) db[o] += dz[r * out + o];
    grads["dense_" + std::to_string(l) + "/kernel"] = dw;
    grads["dense_" + std::to_string(l) + "/bias"] = db;
    if (l == 0) break;
    std::vector<double> dh(static_cast<std::size_t>(B) * in);
    for (int r = 0; r < B; ++r)
      for (int i = 0; i < in; ++i) {
        double s = 0;
        for (int o = 0; o < out; ++o) s += bf16_round(dz[r * out + o]) * bf16_round(w[i * out + o]);
        dh[r * in + i] = z[l - 1][r * in + i] > 0 ? s : 0.0;  // ReLU's mask (derivative 0 at 0)
      }
    dz = dh;
  }
  return loss;
}

double relative_l2(std::span<const float> got, const std::vector<double>& want) {
  double diff = 0, ref = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    ref += want[i] * want[i];
  }
  return std::sqrt(diff / ref);
}

// The whole MLP (784-64-32-10, a batch of 32) in bf16, checked two ways.
// 1. Against the bf16 recipe computed in f64 (bf16_recipe_reference): what is left is f32's
//    summation and the rare activation that f32 and f64 round to neighbouring bf16 values, so 1e-5
//    in relative L2 per tensor (measured: below 1e-7) — the check that the bf16 path computes the
//    recipe, a thousand times below the recipe's own distance from f32.
// 2. Against the same MLP in f32: each bf16 product carries at most 2^-7 of relative error (above),
//    and the gradient of layer l's weights sits at the end of a chain of P(l) products — the L of
//    forward, the L - 1 - l input gradients of backward and its own — so we allow 2·P(l)·2^-7 in
//    relative L2: P(l)·2^-7 if the errors added up without cancellation, doubled for the
//    cancellation a gradient's sums have (the figures are printed; the first layer's, 0.04 of 0.09,
//    is the largest).
TEST(Bf16Mlp, GradientsAreTheBf16RecipeAndFollowF32WithinTheBf16Bound) {
  SKIP_WITHOUT_BF16();
  const MlpConfig model{{784, 64, 32, 10}};
  const int B = 32, L = 3;
  const Tree params = mlp_init(model, 11);
  const auto xs = uniform(static_cast<std::size_t>(B) * 784, 0, 1, 12);
  const Array x = Array::from_vector(test::to_float(xs)).reshape({B, 784});
  std::vector<std::int32_t> ys(B);
  for (int b = 0; b < B; ++b) ys[static_cast<std::size_t>(b)] = (b * 7) % 10;
  const Array labels = Array::from_vector(ys).reshape({B});
  const Array mask = Array::full({B}, 1.0, DType::f32);
  auto run = [&](Precision p, Tree& grads) {
    grads = params.map([](const Array& a) { return Array::zeros(a.shape(), a.dtype()); });
    double loss = 0;
    const Mesh mesh(datarax::test::first_devices(1), {{"model", 1}});
    run_spmd(mesh, [&](const Device&) {
      test::TreeLayerParams<float> store(params, grads);
      ParallelMlpConfig c{model, megatron_splits(L, 1), "model", 1};
      c.precision = p;
      ParallelMlp<float> mlp(c, B);
      loss = mlp.loss_and_grad(store, x, labels, mask, B);
    });
    return loss;
  };
  Tree g32, g16;
  const double l32 = run(Precision::f32, g32), l16 = run(Precision::bf16, g16);
  std::map<std::string, std::vector<double>> want;
  const double l_ref = bf16_recipe_reference(model, params, std::vector<double>(xs.begin(), xs.end()), ys, B, want);
  std::printf("  loss f32 %.7f, bf16 %.7f, bf16 recipe in f64 %.7f\n", l32, l16, l_ref);
  EXPECT_NEAR(l16, l_ref, 1e-5 * l_ref);
  EXPECT_NEAR(l16, l32, 2 * L * 2 * kU * l32);
  for (int l = 0; l < L; ++l)
    for (const char* what : {"kernel", "bias"}) {
      const std::string key = "dense_" + std::to_string(l) + "/" + what;
      const double vs_recipe = relative_l2(g16.at(key).data<float>(), want.at(key));
      const auto f32 = g32.at(key).data<float>();
      const double vs_f32 = relative_l2(g16.at(key).data<float>(), std::vector<double>(f32.begin(), f32.end()));
      const double bound = 2.0 * (L + (L - 1 - l) + 1) * 2 * kU;
      std::printf("  %-16s relative L2: vs the bf16 recipe %.2e (bound 1e-5), vs f32 %.2e (bound %.3f)\n", key.c_str(),
                  vs_recipe, vs_f32, bound);
      EXPECT_LE(vs_recipe, 1e-5) << key;
      EXPECT_LE(vs_f32, bound) << key;
      EXPECT_GT(vs_f32, 1e-3) << key << ": no bf16 rounding seen: did the f32 path run?";
    }
}

TEST(Bf16Linear, AllocatesNothingAfterTheFirstCall) {
  SKIP_WITHOUT_BF16();
  const int B = 64, in = 300, out = 70;
  const auto x = test::to_float(uniform(static_cast<std::size_t>(B) * in, -1, 1, 1));
  const auto w = test::to_float(uniform(static_cast<std::size_t>(in) * out, -1, 1, 2));
  const std::vector<float> bias(out, 0.0F), dout(static_cast<std::size_t>(B) * out, 0.5F);
  std::vector<float> y(static_cast<std::size_t>(B) * out), dx(x.size()), dw(w.size()), db(bias.size());
  const MatmulPrecisionScope bf16(Precision::bf16);
  linear_forward(y, x, w, bias, B, in, out);  // the thread's packing buffers
  const long before = datarax::test::allocation_count();
  for (int i = 0; i < 3; ++i) {
    linear_forward(y, x, w, bias, B, in, out);
    linear_backward(dx, dw, db, dout, x, w, B, in, out);
  }
  EXPECT_EQ(datarax::test::allocation_count() - before, 0);
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

TEST(MatmulPrecision, NamesParseAndBadOnesAreRefused) {
  EXPECT_EQ(parse_precision("f32"), Precision::f32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_EQ(to_string(Precision::bf16), "bf16");
  for (const char* bad : {"", "BF16", "fp16", "f32 ", "bfloat16"})
    EXPECT_THAT(datarax::test::error_of([&] { parse_precision(bad); }),
                HasSubstr("unknown precision \"" + std::string(bad) + "\"; valid: f32, bf16"));
}

// A CPU without AVX512_BF16 (pretended through DATARAX_CPU_NO_BF16=1): bf16 is refused with the
// reason, at the scope and at the model's configuration; f32 still works.
TEST(MatmulPrecision, Bf16IsRefusedOnACpuWithoutIt) {
  ASSERT_EQ(setenv("DATARAX_CPU_NO_BF16", "1", 1), 0);
  EXPECT_FALSE(cpu_supports(Precision::bf16));
  EXPECT_TRUE(cpu_supports(Precision::f32));
  const std::string why = datarax::test::error_of([] { const MatmulPrecisionScope s(Precision::bf16); });
  EXPECT_THAT(why, HasSubstr("MatmulPrecisionScope: precision bf16 needs a CPU with AVX512_BF16"));
  EXPECT_THAT(why, HasSubstr("valid here: f32"));
  EXPECT_THROW({ const MatmulPrecisionScope s(Precision::bf16); }, UnsupportedError);
  ParallelMlpConfig c{MlpConfig{{4, 3}}, {LayerSplit::none}, "model", 1};
  c.precision = Precision::bf16;
  EXPECT_THAT(datarax::test::error_of([&] { c.validate("train"); }), HasSubstr("train: precision bf16 needs"));
  EXPECT_EQ(matmul_precision(), Precision::f32);
  ASSERT_EQ(unsetenv("DATARAX_CPU_NO_BF16"), 0);
}

TEST(MatmulPrecision, DoubleModelsTakeF32Only) {
  SKIP_WITHOUT_BF16();
  ParallelMlpConfig c{MlpConfig{{4, 3}}, {LayerSplit::none}, "model", 1};
  c.precision = Precision::bf16;
  EXPECT_THAT(datarax::test::error_of([&] { ParallelMlp<double>(c, 2); }),
              HasSubstr("ParallelMlp<double>: precision bf16 is for float models; valid: f32"));
}

}  // namespace
}  // namespace datarax::nn
