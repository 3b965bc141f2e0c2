// MlpConfig checks and mlp_init: the seeded parameter initializer described in mlp.h.
#include <cmath>
#include <cstddef>
#include <string>

#include "core/splitmix64.h"
#include "datarax/nn/mlp.h"

namespace datarax::nn {

void validate(const MlpConfig& config, std::string_view op) {
  if (config.sizes.size() < 2)
    throw InvalidArgumentError(std::string(op) + ": sizes has " +
                               std::to_string(config.sizes.size()) +
                               " entries; an MLP needs at least 2 (input width, ..., classes), "
                               "e.g. {784, 512, 512, 10}");
  for (std::size_t i = 0; i < config.sizes.size(); ++i)
    if (config.sizes[i] < 1)
      throw InvalidArgumentError(std::string(op) + ": sizes[" + std::to_string(i) + "] = " +
                                 std::to_string(config.sizes[i]) + " must be >= 1");
  if (config.activation != Activation::relu && config.activation != Activation::gelu)
    throw InvalidArgumentError(std::string(op) + ": invalid activation value " +
                               std::to_string(static_cast<int>(config.activation)) +
                               "; valid: relu, gelu");
}

std::int64_t num_params(const MlpConfig& config) {
  validate(config, "num_params");
  std::int64_t n = 0;
  for (std::size_t i = 0; i + 1 < config.sizes.size(); ++i)
    n += std::int64_t{config.sizes[i]} * config.sizes[i + 1] + config.sizes[i + 1];
  return n;
}

Tree mlp_init(const MlpConfig& config, std::uint64_t seed) {
  validate(config, "mlp_init");
  Tree params;
  for (std::size_t i = 0; i + 1 < config.sizes.size(); ++i) {
    const std::int64_t in = config.sizes[i];
    const std::int64_t out = config.sizes[i + 1];
    Array kernel = Array::empty({in, out}, DType::f32);
    const std::uint64_t key = datarax::detail::SplitMix64::at(seed, i);
    const double limit = std::sqrt(6.0 / static_cast<double>(in));
    std::span<float> w = kernel.data<float>();
    for (std::size_t j = 0; j < w.size(); ++j) {
      const double u = datarax::detail::unit_double(datarax::detail::SplitMix64::at(key, j));
      w[j] = static_cast<float>((2.0 * u - 1.0) * limit);
    }
    const std::string prefix = "dense_" + std::to_string(i);
    params.set(prefix + "/kernel", std::move(kernel));
    params.set(prefix + "/bias", Array::zeros({out}, DType::f32));
  }
  return params;
}

}  // namespace datarax::nn
