#include "datarax/nn/linear.h"

#include <algorithm>
#include <cstddef>

#include "nn/check.h"
#include "nn/gemm.h"

namespace datarax::nn {

namespace {

using detail::gemm;
using detail::kMaxBlasDim;

void check_dims(const char* op, std::int64_t B, std::int64_t in_dim, std::int64_t out_dim) {
  detail::check_dim(op, "B", B, kMaxBlasDim);
  detail::check_dim(op, "in_dim", in_dim, kMaxBlasDim);
  detail::check_dim(op, "out_dim", out_dim, kMaxBlasDim);
}

template <class T>
void forward(std::span<T> out, std::span<const T> inp, std::span<const T> weight,
             std::span<const T> bias, std::int64_t B, std::int64_t in_dim, std::int64_t out_dim) {
  constexpr const char* op = "linear_forward";
  check_dims(op, B, in_dim, out_dim);
  detail::check_span(op, "out", out.size(), "[B, out_dim]", {B, out_dim});
  detail::check_span(op, "inp", inp.size(), "[B, in_dim]", {B, in_dim});
  detail::check_span(op, "weight", weight.size(), "[in_dim, out_dim]", {in_dim, out_dim});
  detail::check_span(op, "bias", bias.size(), "[out_dim]", {out_dim});
  if (B == 0 || out_dim == 0) return;
  // Every row starts as the bias; the product is added onto it (beta = 1).
  for (std::int64_t b = 0; b < B; ++b)
    std::copy(bias.begin(), bias.end(), out.begin() + b * out_dim);
  if (in_dim == 0) return;
  gemm<T>(false, false, B, out_dim, in_dim, T(1), inp.data(), in_dim, weight.data(), out_dim, T(1),
          out.data(), out_dim);
}

template <class T>
void backward(std::span<T> dinp, std::span<T> dweight, std::span<T> dbias, std::span<const T> dout,
              std::span<const T> inp, std::span<const T> weight, std::int64_t B,
              std::int64_t in_dim, std::int64_t out_dim) {
  constexpr const char* op = "linear_backward";
  check_dims(op, B, in_dim, out_dim);
  if (!dinp.empty()) detail::check_span(op, "dinp", dinp.size(), "[B, in_dim]", {B, in_dim});
  detail::check_span(op, "dweight", dweight.size(), "[in_dim, out_dim]", {in_dim, out_dim});
  detail::check_span(op, "dbias", dbias.size(), "[out_dim]", {out_dim});
  detail::check_span(op, "dout", dout.size(), "[B, out_dim]", {B, out_dim});
  detail::check_span(op, "inp", inp.size(), "[B, in_dim]", {B, in_dim});
  if (!dinp.empty() || !weight.empty())  // without dinp the weight is not read, and may be empty
    detail::check_span(op, "weight", weight.size(), "[in_dim, out_dim]", {in_dim, out_dim});
  if (B == 0) return;
  if (out_dim == 0) {
    // dinp = dout · weightᵀ is a sum of nothing.
    std::fill(dinp.begin(), dinp.end(), T(0));
    return;
  }
  // dinp [B, in] = dout [B, out] · weightᵀ [out, in]
  if (!dinp.empty())
    gemm<T>(false, true, B, in_dim, out_dim, T(1), dout.data(), out_dim, weight.data(), out_dim,
            T(0), dinp.data(), in_dim);
  // dweight [in, out] += inpᵀ [in, B] · dout [B, out]
  if (in_dim > 0)
    gemm<T>(true, false, in_dim, out_dim, B, T(1), inp.data(), in_dim, dout.data(), out_dim, T(1),
            dweight.data(), out_dim);
  // dbias [out] += Σ_b dout[b, :]
  for (std::int64_t b = 0; b < B; ++b) {
    const T* row = dout.data() + b * out_dim;
    for (std::int64_t o = 0; o < out_dim; ++o) dbias[static_cast<std::size_t>(o)] += row[o];
  }
}

}  // namespace

void linear_forward(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                    std::span<const float> bias, std::int64_t B, std::int64_t in_dim,
                    std::int64_t out_dim) {
  forward<float>(out, inp, weight, bias, B, in_dim, out_dim);
}
void linear_forward(std::span<double> out, std::span<const double> inp,
                    std::span<const double> weight, std::span<const double> bias, std::int64_t B,
                    std::int64_t in_dim, std::int64_t out_dim) {
  forward<double>(out, inp, weight, bias, B, in_dim, out_dim);
}

void linear_backward(std::span<float> dinp, std::span<float> dweight, std::span<float> dbias,
                     std::span<const float> dout, std::span<const float> inp,
                     std::span<const float> weight, std::int64_t B, std::int64_t in_dim,
                     std::int64_t out_dim) {
  backward<float>(dinp, dweight, dbias, dout, inp, weight, B, in_dim, out_dim);
}
void linear_backward(std::span<double> dinp, std::span<double> dweight, std::span<double> dbias,
                     std::span<const double> dout, std::span<const double> inp,
                     std::span<const double> weight, std::int64_t B, std::int64_t in_dim,
                     std::int64_t out_dim) {
  backward<double>(dinp, dweight, dbias, dout, inp, weight, B, in_dim, out_dim);
}

}  // namespace datarax::nn
