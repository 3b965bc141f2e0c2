// embedding op (ops/embedding.h): a gather forward, a scatter-add backward.
#include "datarax/nn/ops/embedding.h"

#include <cstring>
#include <memory>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using detail::with_float;

// "[1, 3]": the multi-index of flat position p in `shape`, for messages.
std::string position(const Shape& shape, std::int64_t p) {
  std::string s = "]";
  for (int d = shape.rank() - 1; d >= 0; --d) {
    s = std::to_string(p % shape[d]) + (d + 1 < shape.rank() ? ", " : "") + s;
    p /= shape[d];
  }
  return "[" + s;
}

class Embedding final : public Op {
 public:
  Embedding(std::int64_t V, std::int64_t C, Shape ids_shape) : V_(V), C_(C), ids_shape_(std::move(ids_shape)) {}
  std::string_view name() const override { return "embedding"; }

  // table [V, C], ids [N] -> out [N, C]
  void forward(std::span<const Array> in, Array& out) override {
    const std::int32_t* ids = in[1].data<std::int32_t>().data();
    const std::int64_t n = in[1].numel();
    for (std::int64_t p = 0; p < n; ++p)
      if (ids[p] < 0 || ids[p] >= V_)
        detail::fail(name(), "id " + std::to_string(ids[p]) + " at position " + position(ids_shape_, p) +
                                 " (of ids " + ids_shape_.to_string() + ") is out of range; valid: 0.." +
                                 std::to_string(V_ - 1) + " (a table of " + std::to_string(V_) + " rows)");
    const std::size_t row = static_cast<std::size_t>(C_) * in[0].itemsize();
    const auto* table = static_cast<const unsigned char*>(in[0].raw());
    auto* y = static_cast<unsigned char*>(out.raw());
    for (std::int64_t p = 0; p < n; ++p)
      std::memcpy(y + static_cast<std::size_t>(p) * row, table + static_cast<std::size_t>(ids[p]) * row, row);
  }

  void backward(std::span<const Array> in, const Array&, const Array& dout, std::span<Array* const> din) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const std::int32_t* ids = in[1].data<std::int32_t>().data();
      const T* g = dout.data<T>().data();
      T* dt = din[0]->data<T>().data();
      const std::int64_t n = in[1].numel();
      for (std::int64_t p = 0; p < n; ++p) {
        T* row = dt + ids[p] * C_;
        const T* gr = g + p * C_;
        for (std::int64_t c = 0; c < C_; ++c) row[c] += gr[c];
      }
    });
  }

 private:
  std::int64_t V_, C_;
  Shape ids_shape_;
};

}  // namespace

Var embedding(Var table, Var ids) {
  constexpr std::string_view what = "embedding";
  Graph& g = check_operands(what, {table});
  if (table.rank() != 2) detail::fail(what, "the table has shape " + table.shape().to_string() + "; it needs [V, C]");
  if (!ids.valid()) detail::fail(what, "ids is an empty Var (default-constructed)");
  if (&ids.graph() != &g) detail::fail(what, "ids belong to another graph");
  if (ids.dtype() != DType::i32)
    throw DTypeError(std::string(what) + ": ids have dtype " + std::string(to_string(ids.dtype())) + "; valid: i32");
  std::vector<std::int64_t> dims = ids.shape().dims();
  dims.push_back(table.shape()[1]);
  auto op = std::make_unique<Embedding>(table.shape()[0], table.shape()[1], ids.shape());
  return g.apply(std::move(op), {table, ids}, Shape(std::move(dims)), table.dtype());
}

}  // namespace datarax::nn
