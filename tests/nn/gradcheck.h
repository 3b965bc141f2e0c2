// Test helpers for the nn tests: deterministic test data, central finite differences, and a
// comparison that prints the largest difference (as llm.c's test_gpt2 does).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string_view>
#include <vector>

namespace datarax::nn::test {

// Uniform values in [lo, hi) from a fixed 64-bit LCG (Knuth's MMIX constants): the same data on
// every platform, independent of the code under test.
inline std::vector<double> uniform(std::size_t n, double lo, double hi, std::uint64_t seed) {
  std::vector<double> out(n);
  std::uint64_t s = seed * 2654435761u + 1;
  for (double& v : out) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = lo + (hi - lo) * static_cast<double>(s >> 11) * 0x1.0p-53;
  }
  return out;
}

inline std::vector<float> to_float(std::span<const double> v) {
  return std::vector<float>(v.begin(), v.end());
}

// d f / d x[i] by central differences, f being a function of x's current contents.
template <class F>
std::vector<double> numeric_grad(std::vector<double>& x, F&& f, double eps = 1e-6) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double up = f();
    x[i] = saved - eps;
    const double down = f();
    x[i] = saved;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

// max |analytic − numeric| / max |numeric| (or the absolute difference when numeric is all 0);
// prints both, naming the tensor.
inline double relative_error(std::string_view name, std::span<const double> analytic,
                             std::span<const double> numeric) {
  double max_diff = 0, max_ref = 0;
  for (std::size_t i = 0; i < numeric.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(analytic[i] - numeric[i]));
    max_ref = std::max(max_ref, std::abs(numeric[i]));
  }
  const double rel = max_ref > 0 ? max_diff / max_ref : max_diff;
  std::printf("  %-24.*s max |analytic - numeric| = %.3e  (relative %.3e, %zu values)\n",
              static_cast<int>(name.size()), name.data(), max_diff, rel, numeric.size());
  return rel;
}

}  // namespace datarax::nn::test
