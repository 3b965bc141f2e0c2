// Dense (layers/dense.h).
#include "datarax/nn/layers/dense.h"

#include "datarax/error.h"
#include "datarax/nn/ops/collective.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/linear.h"

namespace datarax::nn {

Dense::Dense(Module& parent, std::string name, std::int64_t in_features, std::int64_t out_features,
             DenseOptions options)
    : Module(parent, std::move(name)), use_bias_(options.use_bias), relu_(options.relu), in_(in_features), out_(out_features) {
  if (in_features < 1 || out_features < 1)
    throw InvalidArgumentError("Dense \"" + path() + "\": features " + std::to_string(in_features) + " -> " +
                               std::to_string(out_features) + "; both must be >= 1");
  kernel_ = param("kernel", {in_features, out_features}, std::move(options.kernel_init), options.kernel_sharding);
  if (use_bias_) bias_ = param("bias", {out_features}, std::move(options.bias_init), options.bias_sharding);
  auto axis_of = [&](int dim) -> std::string {
    const std::vector<std::string>& axes = options.kernel_sharding.axes_of(dim);
    if (axes.size() > 1)
      throw InvalidArgumentError("Dense \"" + path() + "\": kernel_sharding " + options.kernel_sharding.to_string() +
                                 " splits a dimension over several axes; a Dense layer splits one dimension over one axis");
    return axes.empty() ? std::string() : axes[0];
  };
  in_axis_ = axis_of(0);
  out_axis_ = axis_of(1);
  if (!in_axis_.empty() && !out_axis_.empty())
    throw InvalidArgumentError("Dense \"" + path() + "\": kernel_sharding " + options.kernel_sharding.to_string() +
                               " splits both dimensions; valid: column-parallel {None, axis} or row-parallel {axis}");
}

DenseOptions column_parallel(DenseOptions options, const std::string& axis) {
  options.kernel_sharding = PartitionSpec{std::nullopt, axis};
  options.bias_sharding = PartitionSpec{axis};
  return options;
}

DenseOptions row_parallel(DenseOptions options, const std::string& axis) {
  options.kernel_sharding = PartitionSpec{axis};
  options.bias_sharding = PartitionSpec{};
  return options;
}

Var Dense::operator()(const VarTree& p, Var x) const {
  const Var kernel = p[kernel_];
  auto whole = [&](Var in) {
    if (use_bias_) return relu_ ? linear_relu(in, kernel, p[bias_]) : linear(in, kernel, p[bias_]);
    return relu_ ? relu(matmul(in, kernel)) : matmul(in, kernel);
  };
  if (!out_axis_.empty() && kernel.shape()[1] != out_) return whole(copy_to_axis(x, out_axis_));  // column-parallel block
  if (!in_axis_.empty() && kernel.shape()[0] != in_) {  // row-parallel block
    Var y = sum_over_axis(matmul(x, kernel), in_axis_);
    if (use_bias_) y = add(y, p[bias_]);
    return relu_ ? relu(y) : y;
  }
  return whole(x);
}

}  // namespace datarax::nn
