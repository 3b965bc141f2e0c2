// Every matrix-product kernel this CPU can run (nn/matmul_kernel.h), forced in turn, on the default
// MLP's step products (batch 128 per device: 1 device of 256, or each of 2) and on the CNN's
// convolution shapes, in interleaved rounds; then the choice the library makes by itself. Names
// the CPU and OpenBLAS's kernel: an OpenBLAS that does not know the CPU's model runs SSE3 code.
//
//   ./build/bench/matmul_kernels [--rounds 5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/matmul_kernel.h"
#include "gemm_shapes.h"

extern "C" char* openblas_get_corename(void);
extern "C" void openblas_set_num_threads(int);

namespace {

using namespace datarax;

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double time_set(const std::vector<bench::Gemm>& gemms, std::vector<float>& a, std::vector<float>& b, std::vector<float>& c) {
  const auto t0 = std::chrono::steady_clock::now();
  for (const bench::Gemm& g : gemms)
    nn::matmul(g.ta, g.tb, g.M, g.N, g.K, 1.0F, a.data(), g.ta ? g.M : g.K, b.data(), g.tb ? g.K : g.N, 0.0F, c.data(), g.N);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "usage: matmul_kernels [--rounds N]";
  bench::reject_unknown_flags(argc, argv, {"--rounds"}, usage);
  const int rounds = static_cast<int>(bench::int_flag(argc, argv, "--rounds", 5, 1, usage));
  openblas_set_num_threads(1);
  std::printf("# matmul_kernels: %s; OpenBLAS kernel %s; 1 thread; %d rounds, kernels interleaved (%s build)\n",
              cpu_model().c_str(), openblas_get_corename(), rounds, DATARAX_BENCH_BUILD_TYPE);
  struct Set {
    const char* name;
    std::vector<bench::Gemm> gemms;
  };
  const std::vector<Set> sets = {
      {"MLP step, batch 128", bench::step_gemms(128, {784, 512, 512}, {512, 512, 10})},
      {"CNN convolutions, batch 128", {{false, false, 128 * 28 * 28, 32, 9}, {false, false, 128 * 14 * 14, 64, 288},
                                       {true, false, 288, 64, 128 * 14 * 14}, {false, true, 128 * 14 * 14, 288, 64}}},
  };
  std::size_t na = 0, nb = 0, nc = 0;
  for (const Set& s : sets)
    for (const bench::Gemm& g : s.gemms) {
      na = std::max(na, static_cast<std::size_t>(g.M) * g.K);
      nb = std::max(nb, static_cast<std::size_t>(g.K) * g.N);
      nc = std::max(nc, static_cast<std::size_t>(g.M) * g.N);
    }
  std::vector<float> a(na), b(nb), c(nc);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 101) / 101.0F - 0.5F;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 89) / 89.0F - 0.5F;

  for (nn::Precision p : {nn::Precision::f32, nn::Precision::bf16}) {
    if (!nn::cpu_supports(p)) continue;
    const std::vector<nn::MatmulKernel> kernels = nn::matmul_kernel_candidates(p);
    std::printf("\n## %s products\n\nshapes | %s\n---", std::string(nn::to_string(p)).c_str(),
                [&] {
                  std::string h;
                  for (auto k : kernels) h += std::string(h.empty() ? "" : " | ") + std::string(nn::to_string(k)) + " GFLOP/s";
                  return h;
                }()
                    .c_str());
    for (std::size_t i = 0; i < kernels.size(); ++i) std::printf("|---");
    std::printf("\n");
    for (const Set& s : sets) {
      std::vector<std::vector<double>> t(kernels.size());
      for (int r = 0; r < rounds + 1; ++r)
        for (std::size_t k = 0; k < kernels.size(); ++k) {
          nn::set_matmul_kernel(p, kernels[k]);
          const nn::MatmulPrecisionScope scope(p);
          const double sec = time_set(s.gemms, a, b, c);
          if (r > 0) t[k].push_back(sec);  // the first round warms up
        }
      std::printf("%s", s.name);
      for (auto& v : t) {
        std::sort(v.begin(), v.end());
        std::printf(" | %.0f", bench::flops(s.gemms) / v[v.size() / 2] / 1e9);
      }
      std::printf("\n");
    }
    nn::unset_matmul_kernel(p);
    std::printf("\nchosen by the library: %s\n", nn::matmul_kernel_choice(p).reason.c_str());
  }
  return 0;
}
