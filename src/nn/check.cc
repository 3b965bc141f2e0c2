#include "nn/check.h"

namespace datarax::nn::detail {

void throw_bad_span(std::string_view op, std::string_view arg, std::size_t size,
                    std::string_view shape_names, std::initializer_list<std::int64_t> dims) {
  std::string shape = "[";
  std::int64_t want = 1;
  for (std::int64_t d : dims) {
    if (shape.size() > 1) shape += ", ";
    shape += std::to_string(d);
    want *= d;
  }
  shape += "]";
  throw InvalidArgumentError(std::string(op) + ": " + std::string(arg) + " has " +
                             std::to_string(size) + " elements; its shape " +
                             std::string(shape_names) + " = " + shape + " needs " +
                             std::to_string(want));
}

void throw_bad_dim(std::string_view op, std::string_view name, std::int64_t value,
                   std::int64_t max) {
  throw InvalidArgumentError(std::string(op) + ": " + std::string(name) + " = " +
                             std::to_string(value) + " is out of range (0.." +
                             std::to_string(max) + ")");
}

}  // namespace datarax::nn::detail
