// Gradient checks of an op through value_and_grad: the loss Σ f(params) ⊙ dout, with dout a fixed
// pseudo-random tensor, so every element of f's output carries its own weight and d loss / d param
// is exactly the op's vector-Jacobian product.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datarax/array.h"
#include "datarax/nn/check_gradients.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/reduce.h"
#include "nn/gradcheck.h"

namespace datarax::nn::test {

inline Array f64_array(Shape shape, std::uint64_t seed, double lo = -1, double hi = 1) {
  const auto n = static_cast<std::size_t>(shape.numel());
  return Array::from_values(std::move(shape), uniform(n, lo, hi, seed));
}

inline GradientCheckReport check_vjp(const std::function<Var(const VarTree&)>& f, const Tree& params,
                                     const Shape& out_shape, std::uint64_t seed,
                                     const GradientCheckOptions& options = {.max_checks_per_leaf = 100000}) {
  Tree batch;
  batch.set("dout", f64_array(out_shape, seed));
  const LossFn loss = [f](const VarTree& p, const VarTree& b) { return sum(mul(f(p), b["dout"])); };
  return check_gradients(loss, params, batch, options);
}

}  // namespace datarax::nn::test
