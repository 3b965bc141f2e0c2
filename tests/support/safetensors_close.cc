// safetensors_close A B TOL: whether two safetensors files hold the same tensors (the same keys,
// dtypes and shapes) with values within TOL of each other per tensor, in relative L2 norm
// (‖a − b‖₂ / ‖a‖₂). Prints each tensor's difference and its largest single-element difference
// (relative to the tensor's largest |a|). Exit 0 when close, 1 when not, 2 on bad input.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "datarax/io/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: safetensors_close A B TOL\n");
    return 2;
  }
  try {
    const double tol = std::stod(argv[3]);
    const datarax::Tree a = datarax::io::load_safetensors(argv[1]), b = datarax::io::load_safetensors(argv[2]);
    if (a.keys() != b.keys()) {
      std::printf("different keys\n");
      return 1;
    }
    bool close = true;
    for (const auto& [key, x] : a) {
      const datarax::Array& y = b.at(key);
      if (x.shape() != y.shape() || x.dtype() != y.dtype()) {
        std::printf("%s: %s vs %s\n", key.c_str(), x.to_string().c_str(), y.to_string().c_str());
        close = false;
        continue;
      }
      const datarax::Array xf = x.astype(datarax::DType::f64), yf = y.astype(datarax::DType::f64);
      const auto p = xf.data<double>(), q = yf.data<double>();
      double d2 = 0, a2 = 0, dmax = 0, amax = 0;
      for (std::size_t i = 0; i < p.size(); ++i) {
        const double d = p[i] - q[i];
        d2 += d * d;
        a2 += p[i] * p[i];
        dmax = std::max(dmax, std::abs(d));
        amax = std::max(amax, std::abs(p[i]));
      }
      const double rel = a2 > 0 ? std::sqrt(d2 / a2) : std::sqrt(d2);
      const bool ok = rel <= tol;  // NaN fails
      std::printf("%s: relative L2 difference %.3g, largest element difference %.3g of max |a|%s\n", key.c_str(), rel,
                  amax > 0 ? dmax / amax : dmax, ok ? "" : "  <-- too far");
      close = close && ok;
    }
    return close ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "safetensors_close: %s\n", e.what());
    return 2;
  }
}
