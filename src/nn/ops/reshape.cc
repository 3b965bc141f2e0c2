// reshape (ops/reshape.h). The output is its own buffer (a copy): a view would have to follow the
// input's buffer, which a bound leaf changes at every step; the copy costs one pass over memory.
#include "datarax/nn/ops/reshape.h"

#include <cstring>
#include <memory>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

class Reshape final : public FreshOp {
 public:
  std::string_view name() const override { return "reshape"; }
  void forward(std::span<const Array> in, Array& out) override { std::memcpy(out.raw(), in[0].raw(), out.nbytes()); }
  void backward_fresh(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] != nullptr) detail::pass_through(name(), dout, *din[0], fresh[0]);
  }
};

}  // namespace

Var reshape(Var x, std::vector<std::int64_t> shape) {
  Graph& g = check_operands("reshape", {x});
  int inferred = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && inferred < 0) {
      inferred = static_cast<int>(i);
    } else if (shape[i] < 0) {
      detail::fail("reshape", "extent " + std::to_string(shape[i]) + " at position " + std::to_string(i) +
                                  "; extents are >= 0, and one may be -1 (inferred)");
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      detail::fail("reshape", "extents overflow: their product passes 2^63 - 1 at position " + std::to_string(i));
    }
  }
  const std::int64_t n = x.shape().numel();
  if (inferred >= 0) {
    if (known == 0 || n % known != 0)
      detail::fail("reshape", "cannot infer the -1 extent: " + std::to_string(n) + " elements (shape " +
                                  x.shape().to_string() + ") over " + std::to_string(known));
    shape[static_cast<std::size_t>(inferred)] = n / known;
    known = n;
  }
  Shape target(std::move(shape));
  if (known != n)  // known: the product of the extents, computed without overflow above
    detail::fail("reshape", "shape " + target.to_string() + " has " + std::to_string(known) + " elements; the input " +
                                x.shape().to_string() + " has " + std::to_string(n));
  return g.apply(std::make_unique<Reshape>(), {x}, std::move(target), x.dtype());
}

Var flatten(Var x) {
  if (x.valid() && x.rank() < 1) detail::fail("flatten", "the input is a scalar; it needs a leading (batch) dimension");
  std::int64_t rest = 1;
  for (int d = 1; d < x.rank(); ++d) rest *= x.shape()[d];
  return reshape(x, {x.shape()[0], rest});
}

}  // namespace datarax::nn
