#include "datarax/dtype.h"

#include <array>
#include <string>

#include "datarax/error.h"

namespace datarax {

namespace {
constexpr std::array<DType, 8> kAll{DType::f32, DType::f64, DType::bf16, DType::f16,
                                    DType::i32, DType::i64, DType::u8,   DType::bool_};
}

std::string_view to_string(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
    case DType::bool_: return "bool";
  }
  return "invalid";
}

DType parse_dtype(std::string_view name) {
  for (DType d : kAll)
    if (to_string(d) == name) return d;
  throw InvalidArgumentError("parse_dtype: unknown dtype \"" + std::string(name) +
                             "\"; valid: f32, f64, bf16, f16, i32, i64, u8, bool");
}

std::size_t byte_size(DType dtype) {
  return visit_dtype(dtype, [](auto t) { return sizeof(t); });
}

bool is_floating(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16 || dtype == DType::f16;
}

bool is_integral(DType dtype) { return !is_floating(dtype); }

}  // namespace datarax
