// Shape: the extents of an Array, outermost first (row-major). A 0-d shape is a scalar.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace datarax {

class Shape {
 public:
  Shape() = default;  // 0-d: a scalar
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::vector<std::int64_t> dims);

  int rank() const { return static_cast<int>(dims_.size()); }
  // Product of the extents; 1 for a scalar.
  std::int64_t numel() const;
  // Elements per index of the leading axis (numel / dim 0); numel for a scalar.
  std::int64_t row_numel() const;

  std::int64_t operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
  // Like operator[] with a range check that names the axis and the rank.
  std::int64_t dim(int axis) const;
  const std::vector<std::int64_t>& dims() const { return dims_; }
  auto begin() const { return dims_.begin(); }
  auto end() const { return dims_.end(); }

  // The same shape with the leading extent replaced (the shape of a leading-axis slice).
  Shape with_leading(std::int64_t extent) const;

  // "[2, 3]"; "[]" for a scalar.
  std::string to_string() const;

  friend bool operator==(const Shape&, const Shape&) = default;

 private:
  std::vector<std::int64_t> dims_;
};

}  // namespace datarax
