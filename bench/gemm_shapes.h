// The matrix products of one device's training step of an MLP, for the benchmarks that time them
// (train_throughput's GEMM bound, gemm_libraries' comparison of libraries).
#pragma once

#include <cstddef>
#include <vector>

namespace datarax::bench {

struct Gemm {
  bool ta, tb;
  int M, N, K;
};

// One device's matrix products in a step of an MLP with local batch b, whose layer l's kernel
// block on the device is [rows[l], cols[l]] (forward, then backward: dW = inpᵀ·dout for every
// layer, dinp = dout·Wᵀ for all but the first).
inline std::vector<Gemm> step_gemms(int b, const std::vector<int>& rows, const std::vector<int>& cols) {
  std::vector<Gemm> g;
  for (std::size_t l = 0; l < rows.size(); ++l) g.push_back({false, false, b, cols[l], rows[l]});
  for (std::size_t l = rows.size(); l-- > 0;) {
    g.push_back({true, false, rows[l], cols[l], b});
    if (l > 0) g.push_back({false, true, b, rows[l], cols[l]});
  }
  return g;
}

inline double flops(const std::vector<Gemm>& gemms) {
  double f = 0;
  for (const Gemm& g : gemms) f += 2.0 * g.M * g.N * g.K;
  return f;
}

}  // namespace datarax::bench
