// Mlp (models/mlp.h).
#include "datarax/nn/models/mlp.h"

#include "datarax/error.h"
#include "datarax/nn/ops/elementwise.h"

namespace datarax::nn {

namespace {

const MlpConfig& checked(const MlpConfig& c) {
  if (c.sizes.size() < 2)
    throw InvalidArgumentError("Mlp: sizes has " + std::to_string(c.sizes.size()) +
                               " entries; it needs the input width, any hidden widths and the classes (2 or more)");
  for (std::size_t i = 0; i < c.sizes.size(); ++i)
    if (c.sizes[i] < 1)
      throw InvalidArgumentError("Mlp: sizes[" + std::to_string(i) + "] = " + std::to_string(c.sizes[i]) + "; widths must be >= 1");
  return c;
}

// Megatron's pairs: column, row, column, row, ...; an unpaired last layer replicated.
DenseOptions layout_of(std::size_t l, std::size_t layers, Activation activation) {
  DenseOptions o;
  o.kernel_init = init::he_uniform();
  o.relu = activation == Activation::relu && l + 1 < layers;  // fused into the product
  if (l % 2 == 1) return row_parallel(o);
  return l + 1 < layers ? column_parallel(o) : o;
}

}  // namespace

Mlp::Mlp(MlpConfig config) : config_(checked(config)) {
  const std::size_t layers = config_.sizes.size() - 1;
  for (std::size_t l = 0; l < layers; ++l)
    layers_.push_back(std::make_unique<Dense>(*this, "dense_" + std::to_string(l), config_.sizes[l], config_.sizes[l + 1],
                                              layout_of(l, layers, config_.activation)));
}

Var Mlp::operator()(const VarTree& p, Var x) const {
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    x = (*layers_[l])(p, x);  // relu: fused into the layer
    if (l + 1 < layers_.size() && config_.activation == Activation::gelu) x = gelu(x, GeluMode::tanh);
  }
  return x;
}

std::string Mlp::describe() const {
  std::string s = "MLP ";
  for (std::size_t i = 0; i < config_.sizes.size(); ++i) s += (i > 0 ? "-" : "") + std::to_string(config_.sizes[i]);
  return s + " (" + std::string(to_string(config_.activation)) + ")";
}

void Mlp::check_model_axis(int m) const {
  const std::size_t layers = layers_.size();
  for (std::size_t l = 0; l + 1 < layers; l += 2)
    if (config_.sizes[l + 1] % m != 0)
      throw InvalidArgumentError("Mlp: width " + std::to_string(config_.sizes[l + 1]) + " (the output of dense_" +
                                 std::to_string(l) + ") is split over a model axis of " + std::to_string(m) +
                                 " devices, which do not divide it; valid: widths divisible by " + std::to_string(m));
}

}  // namespace datarax::nn
