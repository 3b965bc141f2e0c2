// Helpers every op file shares: dtype dispatch and the checks of op arguments.
#pragma once

#include <string>
#include <string_view>

#include "datarax/array.h"
#include "datarax/error.h"

namespace datarax::nn::detail {

// Calls fn(T{}) with T = float or double after the array's dtype.
template <class Fn>
decltype(auto) with_float(DType dtype, std::string_view op, Fn&& fn) {
  if (dtype == DType::f32) return fn(float{});
  if (dtype == DType::f64) return fn(double{});
  throw DTypeError(std::string(op) + ": dtype " + std::string(to_string(dtype)) + "; valid: f32, f64");
}

// InvalidArgumentError "<op>: <what>".
[[noreturn]] inline void fail(std::string_view op, const std::string& what) {
  throw InvalidArgumentError(std::string(op) + ": " + what);
}

}  // namespace datarax::nn::detail
