// Conv (layers/conv.h).
#include "datarax/nn/layers/conv.h"

#include "datarax/error.h"

namespace datarax::nn {

Conv::Conv(Module& parent, std::string name, std::int64_t in_features, std::int64_t out_features,
           std::array<std::int64_t, 2> kernel_size, ConvOptions options)
    : Module(parent, std::move(name)),
      conv_{.strides = options.strides, .padding = options.padding, .relu = options.relu, .max_pool = options.max_pool},
      use_bias_(options.use_bias) {
  const auto where = [&] { return "Conv \"" + path() + "\": "; };
  if (in_features < 1 || out_features < 1)
    throw InvalidArgumentError(where() + "features " + std::to_string(in_features) + " -> " +
                               std::to_string(out_features) + "; both must be >= 1");
  if (kernel_size[0] < 1 || kernel_size[1] < 1)
    throw InvalidArgumentError(where() + "kernel size (" + std::to_string(kernel_size[0]) + ", " +
                               std::to_string(kernel_size[1]) + "); each extent must be >= 1");
  if (options.strides[0] < 1 || options.strides[1] < 1)
    throw InvalidArgumentError(where() + "strides (" + std::to_string(options.strides[0]) + ", " +
                               std::to_string(options.strides[1]) + "); each stride must be >= 1");
  if (options.max_pool[0] < 1 || options.max_pool[1] < 1)
    throw InvalidArgumentError(where() + "max_pool (" + std::to_string(options.max_pool[0]) + ", " +
                               std::to_string(options.max_pool[1]) + "); each extent must be >= 1 ({1, 1}: no pooling)");
  kernel_ = param("kernel", {kernel_size[0], kernel_size[1], in_features, out_features}, std::move(options.kernel_init),
                  options.kernel_sharding);
  if (use_bias_) bias_ = param("bias", {out_features}, std::move(options.bias_init), options.bias_sharding);
}

Var Conv::operator()(const VarTree& p, Var x) const {
  return use_bias_ ? conv2d(x, p[kernel_], p[bias_], conv_) : conv2d(x, p[kernel_], conv_);
}

}  // namespace datarax::nn
