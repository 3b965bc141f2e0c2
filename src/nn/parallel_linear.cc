#include "datarax/nn/parallel_linear.h"

#include <algorithm>

#include "datarax/communicator.h"
#include "datarax/nn/linear.h"
#include "nn/check.h"
#include "nn/gemm.h"

namespace datarax::nn {

namespace {

template <class T>
void column_backward(std::span<T> dinp, std::span<T> dweight, std::span<T> dbias, std::span<const T> dout,
                     std::span<const T> inp, std::span<const T> weight, std::int64_t B, std::int64_t in_dim,
                     std::int64_t out_local, const AxisNames& axis) {
  // The local part is an ordinary linear backward; its dinp is this device's partial sum.
  linear_backward(dinp, dweight, dbias, dout, inp, weight, B, in_dim, out_local);
  // f in backward: the partial input gradients summed over the axis.
  if (!dinp.empty())
    communicator(axis).all_reduce(dinp, ReduceOp::sum, "column_parallel_linear_backward (f: dinp summed)");
}

template <class T>
void row_forward(std::span<T> out, std::span<const T> inp, std::span<const T> weight, std::span<const T> bias,
                 std::int64_t B, std::int64_t in_local, std::int64_t out_dim, const AxisNames& axis) {
  constexpr const char* op = "row_parallel_linear_forward";
  detail::check_dim(op, "B", B, detail::kMaxBlasDim);
  detail::check_dim(op, "in_local", in_local, detail::kMaxBlasDim);
  detail::check_dim(op, "out_dim", out_dim, detail::kMaxBlasDim);
  detail::check_span(op, "out", out.size(), "[B, out_dim]", {B, out_dim});
  detail::check_span(op, "inp", inp.size(), "[B, in_local]", {B, in_local});
  detail::check_span(op, "weight", weight.size(), "[in_local, out_dim]", {in_local, out_dim});
  detail::check_span(op, "bias", bias.size(), "[out_dim]", {out_dim});
  // This device's partial product (every device calls the all-reduce, also with nothing to add).
  if (B > 0 && out_dim > 0 && in_local > 0)
    detail::gemm<T>(false, false, B, out_dim, in_local, T(1), inp.data(), in_local, weight.data(), out_dim, T(0),
                    out.data(), out_dim);
  else
    std::fill(out.begin(), out.end(), T(0));
  // g in forward: the partial products summed over the axis; then the bias, once.
  communicator(axis).all_reduce(out, ReduceOp::sum, "row_parallel_linear_forward (g: out summed)");
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t o = 0; o < out_dim; ++o) out[static_cast<std::size_t>(b * out_dim + o)] += bias[static_cast<std::size_t>(o)];
}

}  // namespace

void column_parallel_linear_forward(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                                    std::span<const float> bias, std::int64_t B, std::int64_t in_dim,
                                    std::int64_t out_local) {
  linear_forward(out, inp, weight, bias, B, in_dim, out_local);
}
void column_parallel_linear_forward(std::span<double> out, std::span<const double> inp, std::span<const double> weight,
                                    std::span<const double> bias, std::int64_t B, std::int64_t in_dim,
                                    std::int64_t out_local) {
  linear_forward(out, inp, weight, bias, B, in_dim, out_local);
}

void column_parallel_linear_backward(std::span<float> dinp, std::span<float> dweight, std::span<float> dbias,
                                     std::span<const float> dout, std::span<const float> inp,
                                     std::span<const float> weight, std::int64_t B, std::int64_t in_dim,
                                     std::int64_t out_local, const AxisNames& axis) {
  column_backward<float>(dinp, dweight, dbias, dout, inp, weight, B, in_dim, out_local, axis);
}
void column_parallel_linear_backward(std::span<double> dinp, std::span<double> dweight, std::span<double> dbias,
                                     std::span<const double> dout, std::span<const double> inp,
                                     std::span<const double> weight, std::int64_t B, std::int64_t in_dim,
                                     std::int64_t out_local, const AxisNames& axis) {
  column_backward<double>(dinp, dweight, dbias, dout, inp, weight, B, in_dim, out_local, axis);
}

void row_parallel_linear_forward(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                                 std::span<const float> bias, std::int64_t B, std::int64_t in_local,
                                 std::int64_t out_dim, const AxisNames& axis) {
  row_forward<float>(out, inp, weight, bias, B, in_local, out_dim, axis);
}
void row_parallel_linear_forward(std::span<double> out, std::span<const double> inp, std::span<const double> weight,
                                 std::span<const double> bias, std::int64_t B, std::int64_t in_local,
                                 std::int64_t out_dim, const AxisNames& axis) {
  row_forward<double>(out, inp, weight, bias, B, in_local, out_dim, axis);
}

void row_parallel_linear_backward(std::span<float> dinp, std::span<float> dweight, std::span<float> dbias,
                                  std::span<const float> dout, std::span<const float> inp,
                                  std::span<const float> weight, std::int64_t B, std::int64_t in_local,
                                  std::int64_t out_dim) {
  linear_backward(dinp, dweight, dbias, dout, inp, weight, B, in_local, out_dim);
}
void row_parallel_linear_backward(std::span<double> dinp, std::span<double> dweight, std::span<double> dbias,
                                  std::span<const double> dout, std::span<const double> inp,
                                  std::span<const double> weight, std::int64_t B, std::int64_t in_local,
                                  std::int64_t out_dim) {
  linear_backward(dinp, dweight, dbias, dout, inp, weight, B, in_local, out_dim);
}

}  // namespace datarax::nn
