// broadcast_to (ops/broadcast.h). Each output element reads x at its index with the repeated
// dimensions' coordinates set to 0; the index map is computed once at recording (one i64 per
// output element), so forward and backward are one gather and one scatter-add.
#include "datarax/nn/ops/broadcast.h"

#include <cstring>
#include <memory>
#include <vector>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

class BroadcastTo final : public FreshOp {
 public:
  explicit BroadcastTo(std::vector<std::int64_t> source) : source_(std::move(source)) {}
  std::string_view name() const override { return "broadcast_to"; }
  void forward(std::span<const Array> in, Array& out) override {
    detail::with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      T* y = out.data<T>().data();
      for (std::size_t i = 0; i < source_.size(); ++i) y[i] = x[source_[i]];
    });
  }
  void backward_fresh(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] == nullptr) return;
    if (fresh[0]) std::memset(din[0]->raw(), 0, din[0]->nbytes());
    detail::with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      for (std::size_t i = 0; i < source_.size(); ++i) dx[source_[i]] += g[i];
    });
  }

 private:
  std::vector<std::int64_t> source_;  // by output element: the element of x it copies
};

}  // namespace

Var broadcast_to(Var x, Shape shape) {
  Graph& g = check_operands("broadcast_to", {x});
  const Shape& from = x.shape();
  const int R = shape.rank(), r = from.rank();
  auto refuse = [&] {
    detail::fail("broadcast_to", "shape " + from.to_string() + " does not broadcast to " + shape.to_string() +
                                     " (its dimensions align with the last ones of the target, each equal or 1)");
  };
  if (r > R) refuse();
  for (int d = 0; d < R; ++d)
    if (shape[d] < 0) refuse();
  for (int d = 0; d < r; ++d)
    if (from[d] != 1 && from[d] != shape[R - r + d]) refuse();
  // source index of each output element: walk the output row-major with x's strides (0 where repeated).
  std::vector<std::int64_t> stride(static_cast<std::size_t>(R), 0);
  std::int64_t s = 1;
  for (int d = r - 1; d >= 0; --d) {
    if (from[d] != 1) stride[static_cast<std::size_t>(R - r + d)] = s;
    s *= from[d];
  }
  const std::int64_t n = shape.numel();
  std::vector<std::int64_t> source(static_cast<std::size_t>(n));
  std::vector<std::int64_t> idx(static_cast<std::size_t>(R), 0);
  std::int64_t at = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    source[static_cast<std::size_t>(i)] = at;
    for (int d = R - 1; d >= 0; --d) {  // increment the multi-index, keeping `at` in step
      const auto ud = static_cast<std::size_t>(d);
      if (++idx[ud] < shape[d]) {
        at += stride[ud];
        break;
      }
      at -= stride[ud] * (shape[d] - 1);
      idx[ud] = 0;
    }
  }
  return g.apply(std::make_unique<BroadcastTo>(std::move(source)), {x}, std::move(shape), x.dtype());
}

}  // namespace datarax::nn
