// Internal argument checks shared by the nn layer functions. The messages name the function, the
// argument, the shape it should have and the sizes (the text is built only when a check fails).
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax::nn::detail {

using datarax::detail::number;  // core/strings.h

[[noreturn]] void throw_bad_span(std::string_view op, std::string_view arg, std::size_t size,
                                 std::string_view shape_names,
                                 std::initializer_list<std::int64_t> dims);
[[noreturn]] void throw_bad_dim(std::string_view op, std::string_view name, std::int64_t value,
                                std::int64_t max);

// `arg` must have exactly Π dims elements; shape_names spells the shape ("[B, in_dim]").
inline void check_span(std::string_view op, std::string_view arg, std::size_t size,
                       std::string_view shape_names, std::initializer_list<std::int64_t> dims) {
  std::int64_t want = 1;
  for (std::int64_t d : dims) want *= d;
  if (static_cast<std::int64_t>(size) != want) throw_bad_span(op, arg, size, shape_names, dims);
}

// 0 <= value <= max.
inline void check_dim(std::string_view op, std::string_view name, std::int64_t value,
                      std::int64_t max) {
  if (value < 0 || value > max) throw_bad_dim(op, name, value, max);
}

}  // namespace datarax::nn::detail
