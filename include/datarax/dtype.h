// DType: the element types an Array can hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "datarax/half.h"

namespace datarax {

enum class DType : std::uint8_t { f32, f64, bf16, f16, i32, i64, u8, bool_ };

// "f32", "f64", "bf16", "f16", "i32", "i64", "u8", "bool".
std::string_view to_string(DType dtype);

// Parses the names to_string gives; anything else throws InvalidArgumentError listing them.
DType parse_dtype(std::string_view name);

// Bytes per element.
std::size_t byte_size(DType dtype);

bool is_floating(DType dtype);  // f32, f64, bf16, f16
bool is_integral(DType dtype);  // i32, i64, u8, bool

// The DType that stores C++ type T. Only the eight element types have one.
template <class T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<float16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::bool_; };
static_assert(sizeof(bool) == 1, "datarax stores bool as one byte");

template <class T>
inline constexpr DType dtype_v = dtype_of<T>::value;

// Calls fn(T{}) with the C++ type that stores `dtype`: a switch written once.
template <class Fn>
decltype(auto) visit_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::bf16: return fn(bfloat16{});
    case DType::f16: return fn(float16{});
    case DType::i32: return fn(std::int32_t{});
    case DType::i64: return fn(std::int64_t{});
    case DType::u8: return fn(std::uint8_t{});
    case DType::bool_: return fn(bool{});
  }
  return fn(float{});  // unreachable for valid enum values
}

}  // namespace datarax
