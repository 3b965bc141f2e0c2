#include "datarax/shape.h"

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax {

namespace {
void check_dims(const std::vector<std::int64_t>& dims) {
  for (std::size_t i = 0; i < dims.size(); ++i)
    if (dims[i] < 0)
      throw InvalidArgumentError("Shape: dimension " + std::to_string(i) + " has size " +
                                 std::to_string(dims[i]) + "; sizes must be >= 0");
}
}  // namespace

Shape::Shape(std::initializer_list<std::int64_t> dims) : dims_(dims) { check_dims(dims_); }
Shape::Shape(std::vector<std::int64_t> dims) : dims_(std::move(dims)) { check_dims(dims_); }

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : dims_) n *= d;
  return n;
}

std::int64_t Shape::row_numel() const {
  if (dims_.empty()) return 1;
  std::int64_t n = 1;
  for (std::size_t i = 1; i < dims_.size(); ++i) n *= dims_[i];
  return n;
}

std::int64_t Shape::dim(int axis) const {
  if (axis < 0 || axis >= rank())
    throw InvalidArgumentError("Shape::dim: axis " + std::to_string(axis) +
                               " is out of range for shape " + to_string() + " (valid: 0.." +
                               std::to_string(rank() - 1) + ")");
  return dims_[static_cast<std::size_t>(axis)];
}

Shape Shape::with_leading(std::int64_t extent) const {
  if (dims_.empty()) throw InvalidArgumentError("Shape::with_leading: a scalar has no leading axis");
  std::vector<std::int64_t> dims = dims_;
  dims[0] = extent;
  return Shape(std::move(dims));
}

std::string Shape::to_string() const {
  return "[" + detail::join(dims_, ", ", [](std::int64_t d) { return std::to_string(d); }) + "]";
}

}  // namespace datarax
