// Dense (layers/dense.h).
#include "datarax/nn/layers/dense.h"

#include "datarax/error.h"
#include "datarax/nn/ops/linear.h"

namespace datarax::nn {

Dense::Dense(Module& parent, std::string name, std::int64_t in_features, std::int64_t out_features,
             DenseOptions options)
    : Module(parent, std::move(name)), use_bias_(options.use_bias) {
  if (in_features < 1 || out_features < 1)
    throw InvalidArgumentError("Dense \"" + path() + "\": features " + std::to_string(in_features) + " -> " +
                               std::to_string(out_features) + "; both must be >= 1");
  kernel_ = param("kernel", {in_features, out_features}, std::move(options.kernel_init), options.kernel_sharding);
  if (use_bias_) bias_ = param("bias", {out_features}, std::move(options.bias_init), options.bias_sharding);
}

Var Dense::operator()(const VarTree& p, Var x) const {
  return use_bias_ ? linear(x, p[kernel_], p[bias_]) : matmul(x, p[kernel_]);
}

}  // namespace datarax::nn
