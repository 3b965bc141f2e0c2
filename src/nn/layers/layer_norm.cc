// LayerNorm (layers/layer_norm.h).
#include "datarax/nn/layers/layer_norm.h"

#include <cmath>

#include "datarax/error.h"
#include "datarax/nn/ops/layer_norm.h"

namespace datarax::nn {

LayerNorm::LayerNorm(Module& parent, std::string name, std::int64_t features, LayerNormOptions options)
    : Module(parent, std::move(name)), epsilon_(options.epsilon) {
  if (features < 1)
    throw InvalidArgumentError("LayerNorm \"" + path() + "\": features " + std::to_string(features) + "; valid: >= 1");
  if (!(epsilon_ > 0) || !std::isfinite(epsilon_))
    throw InvalidArgumentError("LayerNorm \"" + path() + "\": epsilon " + std::to_string(epsilon_) +
                               "; valid: > 0 and finite");
  scale_ = param("scale", {features}, std::move(options.scale_init));
  bias_ = param("bias", {features}, std::move(options.bias_init));
}

Var LayerNorm::operator()(const VarTree& p, Var x) const { return layer_norm(x, p[scale_], p[bias_], epsilon_); }

}  // namespace datarax::nn
