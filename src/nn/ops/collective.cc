// Megatron's f and g as ops (nn/ops/collective.h).
#include "datarax/nn/ops/collective.h"

#include <cstring>
#include <memory>

#include "datarax/collectives.h"
#include "datarax/spmd.h"
#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

class CopyToAxis final : public FreshOp {
 public:
  explicit CopyToAxis(std::string axis) : axis_(std::move(axis)) {}
  std::string_view name() const override { return "copy_to_axis"; }
  void forward(std::span<const Array> in, Array& out) override { std::memcpy(out.raw(), in[0].raw(), out.nbytes()); }
  void backward_fresh(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] == nullptr) return;
    if (fresh[0]) {
      std::memcpy(din[0]->raw(), dout.raw(), dout.nbytes());
      all_reduce_in_place(*din[0], ReduceOp::sum, axis_);
      return;
    }
    if (summed_.numel() != dout.numel()) summed_ = Array::empty(dout.shape(), dout.dtype());  // once
    std::memcpy(summed_.raw(), dout.raw(), dout.nbytes());
    all_reduce_in_place(summed_, ReduceOp::sum, axis_);
    detail::pass_through(name(), summed_, *din[0], false);
  }

 private:
  std::string axis_;
  Array summed_;
};

class SumOverAxis final : public FreshOp {
 public:
  explicit SumOverAxis(std::string axis) : axis_(std::move(axis)) {}
  std::string_view name() const override { return "sum_over_axis"; }
  void forward(std::span<const Array> in, Array& out) override {
    std::memcpy(out.raw(), in[0].raw(), out.nbytes());
    all_reduce_in_place(out, ReduceOp::sum, axis_);
  }
  void backward_fresh(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din,
                      std::span<const bool> fresh) override {
    if (din[0] == nullptr) return;
    detail::pass_through(name(), dout, *din[0], fresh[0]);
  }

 private:
  std::string axis_;
};

template <class OpT>
Var record(const char* what, Var x, const std::string& axis) {
  Graph& g = check_operands(what, {x});
  if (axis.empty()) detail::fail(what, "the axis name is empty");
  if (axis_devices(axis) == 1) return x;
  return g.apply(std::make_unique<OpT>(axis), {x}, x.shape(), x.dtype());
}

}  // namespace

int axis_devices(const std::string& axis) {
  if (!in_spmd() || !current_mesh().has_axis(axis)) return 1;
  return current_mesh().axis_size(axis);
}

Var copy_to_axis(Var x, const std::string& axis) { return record<CopyToAxis>("copy_to_axis", x, axis); }
Var sum_over_axis(Var x, const std::string& axis) { return record<SumOverAxis>("sum_over_axis", x, axis); }

}  // namespace datarax::nn
