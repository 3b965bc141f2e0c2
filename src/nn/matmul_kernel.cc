// The choice of matrix-product kernel per precision (matmul_kernel.h).
#include "datarax/nn/matmul_kernel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "nn/gemm.h"

namespace datarax::nn {

namespace {

constexpr MatmulKernel kAll[] = {MatmulKernel::openblas, MatmulKernel::avx512, MatmulKernel::avx512_bf16,
                                 MatmulKernel::onednn_bf16};
// A kernel replaces the reference only when at least this much faster.
constexpr double kMargin = 1.10;

int index(Precision p) { return p == Precision::f32 ? 0 : 1; }

struct State {
  std::mutex mutex;
  std::atomic<int> kernel[2] = {-1, -1};
  KernelChoice choice[2];
};
State& state() {
  static State s;
  return s;
}

const char* env_name(Precision p) {
  return p == Precision::f32 ? "DATARAX_MATMUL_KERNEL_F32" : "DATARAX_MATMUL_KERNEL_BF16";
}

std::string names(std::span<const MatmulKernel> ks) {
  std::string out;
  for (MatmulKernel k : ks) out += (out.empty() ? "" : ", ") + std::string(to_string(k));
  return out;
}

void run(MatmulKernel k, const MatmulShape& s, const float* a, const float* b, float* c) {
  const std::int64_t lda = s.trans_a ? s.M : s.K, ldb = s.trans_b ? s.K : s.N;
  switch (k) {
    case MatmulKernel::openblas:
      cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans,
                  static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), 1.0F, a, static_cast<int>(lda),
                  b, static_cast<int>(ldb), 0.0F, c, static_cast<int>(s.N));
      return;
    case MatmulKernel::avx512:
      detail::gemm_f32_avx512(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0F, a, lda, b, ldb, 0.0F, c, s.N);
      return;
    case MatmulKernel::avx512_bf16:
      detail::gemm_bf16(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0F, a, lda, b, ldb, 0.0F, c, s.N);
      return;
    case MatmulKernel::onednn_bf16:
      detail::gemm_onednn_bf16(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0F, a, lda, b, ldb, 0.0F, c, s.N);
      return;
  }
}

// Every candidate timed on every shape: 1 warm-up, then 3 rounds with the kernels interleaved;
// each kernel's best round.
std::vector<KernelChoice::Timing> measure(const std::vector<MatmulKernel>& kernels, std::span<const MatmulShape> shapes) {
  std::int64_t na = 1, nb = 1, nc = 1;
  double flops = 0;
  for (const MatmulShape& s : shapes) {
    na = std::max(na, s.M * s.K);
    nb = std::max(nb, s.K * s.N);
    nc = std::max(nc, s.M * s.N);
    flops += 2.0 * static_cast<double>(s.M) * static_cast<double>(s.N) * static_cast<double>(s.K);
  }
  std::vector<float> a(static_cast<std::size_t>(na)), b(static_cast<std::size_t>(nb)), c(static_cast<std::size_t>(nc));
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 97) / 97.0F - 0.5F;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 89) / 89.0F - 0.5F;
  std::vector<double> best(kernels.size(), 1e300);
  for (MatmulKernel k : kernels)
    for (const MatmulShape& s : shapes) run(k, s, a.data(), b.data(), c.data());
  for (int round = 0; round < 3; ++round)
    for (std::size_t i = 0; i < kernels.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const MatmulShape& s : shapes) run(kernels[i], s, a.data(), b.data(), c.data());
      best[i] = std::min(best[i], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  std::vector<KernelChoice::Timing> out;
  for (std::size_t i = 0; i < kernels.size(); ++i) out.push_back({kernels[i], flops / std::max(best[i], 1e-12) / 1e9});
  return out;
}

std::string gflops(double g) { return std::to_string(static_cast<long>(g + 0.5)) + " GFLOP/s"; }

KernelChoice decide(Precision p, std::vector<KernelChoice::Timing> timings) {
  KernelChoice c{.precision = p, .kernel = timings.front().kernel, .timings = timings, .forced = false, .reason = {}};
  const KernelChoice::Timing ref = timings.front();
  KernelChoice::Timing best = ref;
  for (const auto& t : timings)
    if (t.gflops > best.gflops) best = t;
  if (best.gflops >= kMargin * ref.gflops) c.kernel = best.kernel;
  const KernelChoice::Timing& chosen = c.kernel == ref.kernel ? ref : best;
  std::string others;
  for (const auto& t : timings)
    if (t.kernel != chosen.kernel) others += "; " + std::string(to_string(t.kernel)) + " " + gflops(t.gflops);
  c.reason = std::string(to_string(chosen.kernel)) + ", measured fastest (" + gflops(chosen.gflops) + others + ")";
  if (p == Precision::bf16 && !rounds_to_bf16(c.kernel))
    c.reason = "no bf16 kernel beats f32 on this CPU, so bf16 products run in f32: " + c.reason;
  return c;
}

// Chooses for p under the state's lock: the environment's kernel, or the measurement's.
void choose_locked(State& st, Precision p, std::span<const MatmulShape> shapes) {
  KernelChoice c;
  if (const char* forced = std::getenv(env_name(p)); forced != nullptr && *forced != '\0') {
    const std::vector<MatmulKernel> valid = matmul_kernel_candidates(p);
    MatmulKernel k{};
    try {
      k = parse_matmul_kernel(forced);
    } catch (const InvalidArgumentError&) {
      throw InvalidArgumentError(std::string(env_name(p)) + "=" + forced + ": unknown kernel; valid: " + names(kAll) +
                                 " (on this CPU for " + std::string(to_string(p)) + ": " + names(valid) + ")");
    }
    if (std::find(valid.begin(), valid.end(), k) == valid.end())
      throw InvalidArgumentError(std::string(env_name(p)) + "=" + forced +
                                 (p == Precision::f32 && rounds_to_bf16(k) ? ": a bf16 kernel, not one for f32 products"
                                                                         : ": this CPU cannot run it for " +
                                                                               std::string(to_string(p)) + " products") +
                                 "; valid here: " + names(valid));
    c = {.precision = p, .kernel = k, .timings = {}, .forced = true,
         .reason = std::string(to_string(k)) + " (forced by " + env_name(p) + ")"};
  } else {
    c = decide(p, measure(matmul_kernel_candidates(p), shapes));
  }
  st.choice[index(p)] = c;
  st.kernel[index(p)].store(static_cast<int>(c.kernel), std::memory_order_release);
}

constexpr MatmulShape kDefaultShapes[] = {{false, false, 128, 512, 512}, {false, true, 128, 512, 512},
                                          {true, false, 512, 512, 128}};

}  // namespace

std::string_view to_string(MatmulKernel kernel) {
  switch (kernel) {
    case MatmulKernel::openblas: return "openblas";
    case MatmulKernel::avx512: return "avx512";
    case MatmulKernel::avx512_bf16: return "avx512_bf16";
    case MatmulKernel::onednn_bf16: return "onednn_bf16";
  }
  return "?";
}

MatmulKernel parse_matmul_kernel(std::string_view name) {
  for (MatmulKernel k : kAll)
    if (to_string(k) == name) return k;
  throw InvalidArgumentError("parse_matmul_kernel: unknown kernel \"" + std::string(name) + "\"; valid: " + names(kAll));
}

bool cpu_supports(MatmulKernel kernel) {
  switch (kernel) {
    case MatmulKernel::openblas: return true;
    case MatmulKernel::avx512: return detail::cpu_has_avx512f();
    case MatmulKernel::avx512_bf16: return cpu_supports(Precision::bf16);
    case MatmulKernel::onednn_bf16: return cpu_supports(Precision::bf16) && detail::cpu_has_onednn_bf16();
  }
  return false;
}

bool rounds_to_bf16(MatmulKernel kernel) {
  return kernel == MatmulKernel::avx512_bf16 || kernel == MatmulKernel::onednn_bf16;
}

std::string onednn_about() { return detail::onednn_about(); }

std::vector<MatmulKernel> matmul_kernel_candidates(Precision precision) {
  std::vector<MatmulKernel> out;
  if (precision == Precision::bf16)
    for (MatmulKernel k : {MatmulKernel::avx512_bf16, MatmulKernel::onednn_bf16})
      if (cpu_supports(k)) out.push_back(k);
  for (MatmulKernel k : {MatmulKernel::openblas, MatmulKernel::avx512})
    if (cpu_supports(k)) out.push_back(k);
  return out;
}

MatmulKernel matmul_kernel(Precision precision) {
  State& st = state();
  int k = st.kernel[index(precision)].load(std::memory_order_acquire);
  if (k < 0) {
    std::lock_guard lock(st.mutex);
    k = st.kernel[index(precision)].load(std::memory_order_acquire);
    if (k < 0) {
      choose_locked(st, precision, kDefaultShapes);
      k = st.kernel[index(precision)].load(std::memory_order_acquire);
    }
  }
  return static_cast<MatmulKernel>(k);
}

KernelChoice matmul_kernel_choice(Precision precision) {
  (void)matmul_kernel(precision);
  State& st = state();
  std::lock_guard lock(st.mutex);
  return st.choice[index(precision)];
}

KernelChoice choose_matmul_kernel(Precision precision, std::span<const MatmulShape> shapes) {
  for (const MatmulShape& s : shapes)
    if (s.M < 1 || s.N < 1 || s.K < 1 || s.M > detail::kMaxBlasDim || s.N > detail::kMaxBlasDim ||
        s.K > detail::kMaxBlasDim)
      throw InvalidArgumentError("choose_matmul_kernel: shape M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) +
                                 " K=" + std::to_string(s.K) + "; each extent must be in 1..2147483647");
  State& st = state();
  std::lock_guard lock(st.mutex);
  if (st.kernel[index(precision)].load() >= 0 && st.choice[index(precision)].forced) return st.choice[index(precision)];
  choose_locked(st, precision, shapes.empty() ? std::span<const MatmulShape>(kDefaultShapes) : shapes);
  return st.choice[index(precision)];
}

void set_matmul_kernel(Precision precision, MatmulKernel kernel) {
  const std::vector<MatmulKernel> valid = matmul_kernel_candidates(precision);
  if (!cpu_supports(kernel))
    throw UnsupportedError("set_matmul_kernel: this CPU cannot run " + std::string(to_string(kernel)) +
                           "; valid here for " + std::string(to_string(precision)) + ": " + names(valid));
  if (std::find(valid.begin(), valid.end(), kernel) == valid.end())
    throw InvalidArgumentError("set_matmul_kernel: " + std::string(to_string(kernel)) + " is not a " +
                               std::string(to_string(precision)) + " kernel; valid: " + names(valid));
  State& st = state();
  std::lock_guard lock(st.mutex);
  st.choice[index(precision)] = {.precision = precision, .kernel = kernel, .timings = {}, .forced = true,
                                 .reason = std::string(to_string(kernel)) + " (set by the program)"};
  st.kernel[index(precision)].store(static_cast<int>(kernel), std::memory_order_release);
}

void unset_matmul_kernel(Precision precision) {
  State& st = state();
  std::lock_guard lock(st.mutex);
  st.choice[index(precision)] = {};
  st.kernel[index(precision)].store(-1, std::memory_order_release);
}

}  // namespace datarax::nn
