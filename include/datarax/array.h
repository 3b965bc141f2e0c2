// Array: a typed, row-major, n-dimensional buffer on one device.
//
// An Array is a handle: copying an Array shares its buffer (like std::shared_ptr), and views made
// by slice(), reshape() or with_device() share it too. copy() makes an independent buffer.
// Element access is typed and checked: data<float>() on an i32 array throws DTypeError naming both.
//
// Buffers come from a process-wide cache of freed blocks: first-touching freshly mapped memory
// costs microseconds per 4 KiB page (a page fault each), so a large buffer freed and allocated
// again (a step's temporaries) reuses memory that is already mapped instead of paying that again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "datarax/device.h"
#include "datarax/dtype.h"
#include "datarax/error.h"
#include "datarax/shape.h"

namespace datarax {

class Array {
 public:
  // An empty f32 array of shape [0] on cpu:0, holding no buffer.
  Array();

  // Uninitialized contents: for buffers about to be overwritten.
  static Array empty(Shape shape, DType dtype = DType::f32, Device device = {});
  static Array zeros(Shape shape, DType dtype = DType::f32, Device device = {});
  // `value` converted to dtype; for integer dtypes it must be a whole number in the dtype's range.
  static Array full(Shape shape, double value, DType dtype = DType::f32, Device device = {});

  // Takes the vector's storage without copying. values.size() must equal shape.numel().
  template <class T>
  static Array from_values(Shape shape, std::vector<T> values, Device device = {});
  // A 1-D array of the values.
  template <class T>
  static Array from_vector(std::vector<T> values, Device device = {}) {
    Shape shape{static_cast<std::int64_t>(values.size())};
    return from_values<T>(std::move(shape), std::move(values), device);
  }
  // A 0-d array.
  template <class T>
  static Array scalar(T value, Device device = {}) {
    return from_values<T>(Shape{}, std::vector<T>{value}, device);
  }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  Device device() const { return device_; }
  int rank() const { return shape_.rank(); }
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t itemsize() const { return byte_size(dtype_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * itemsize(); }

  // The elements, row-major. T must be the array's element type (DTypeError otherwise).
  template <class T>
  std::span<T> data() {
    check_dtype(dtype_v<T>, "Array::data");
    return {reinterpret_cast<T*>(data_.get()), static_cast<std::size_t>(numel())};
  }
  template <class T>
  std::span<const T> data() const {
    check_dtype(dtype_v<T>, "Array::data");
    return {reinterpret_cast<const T*>(data_.get()), static_cast<std::size_t>(numel())};
  }
  std::span<std::byte> bytes() { return {data_.get(), nbytes()}; }
  std::span<const std::byte> bytes() const { return {data_.get(), nbytes()}; }
  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }

  // The one element of a 0-d (or one-element) array.
  template <class T>
  T item() const;
  // The element at a full index, bounds-checked.
  template <class T>
  T& at(std::initializer_list<std::int64_t> index) {
    return data<T>()[static_cast<std::size_t>(flat_index(index))];
  }
  template <class T>
  const T& at(std::initializer_list<std::int64_t> index) const {
    return data<T>()[static_cast<std::size_t>(flat_index(index))];
  }

  // A view of rows [start, stop) of the leading axis: no copy, shares the buffer.
  Array slice(std::int64_t start, std::int64_t stop) const;
  // A view with another shape of the same element count.
  Array reshape(Shape shape) const;
  // A view labelled with another device. CPU devices share host memory, so this is how data is
  // placed on a CPU device without copying; other kinds throw.
  Array with_device(Device device) const;

  // An independent copy (on `device`, default: the same device).
  Array copy() const;
  Array copy_to(Device device) const;
  // Elements converted to another dtype (a copy, also when the dtype is the same).
  Array astype(DType dtype) const;
  // Overwrites this array's elements with src's; same dtype and shape required.
  void copy_from(const Array& src);
  void fill(double value);

  bool shares_buffer_with(const Array& other) const;
  // "f32[2, 3] on cpu:0", followed by the values when there are at most 16.
  std::string to_string() const;

 private:
  Array(DType dtype, Shape shape, Device device, std::shared_ptr<std::byte> data);
  void check_dtype(DType requested, const char* op) const;
  std::int64_t flat_index(std::initializer_list<std::int64_t> index) const;
  static Array adopt(DType dtype, Shape shape, Device device, std::shared_ptr<void> owner,
                     void* data, std::size_t count, const char* op);

  DType dtype_ = DType::f32;
  Shape shape_{0};
  Device device_{};
  // Points at this array's first element; shares ownership with the whole allocation (aliasing
  // constructor), so views keep their base alive.
  std::shared_ptr<std::byte> data_;
};

// Same dtype, same shape, same bytes.
bool bitwise_equal(const Array& a, const Array& b);

template <class T>
Array Array::from_values(Shape shape, std::vector<T> values, Device device) {
  if constexpr (std::is_same_v<T, bool>) {
    // std::vector<bool> packs bits: copy into bytes.
    std::vector<std::uint8_t> bytes(values.begin(), values.end());
    auto owner = std::make_shared<std::vector<std::uint8_t>>(std::move(bytes));
    return adopt(DType::bool_, std::move(shape), device, owner, owner->data(), owner->size(),
                 "Array::from_values");
  } else {
    auto owner = std::make_shared<std::vector<T>>(std::move(values));
    return adopt(dtype_v<T>, std::move(shape), device, owner, owner->data(), owner->size(),
                 "Array::from_values");
  }
}

template <class T>
T Array::item() const {
  if (numel() != 1)
    throw InvalidArgumentError("Array::item: the array has " + std::to_string(numel()) +
                               " elements (shape " + shape_.to_string() + "); item needs exactly 1");
  return data<T>()[0];
}

}  // namespace datarax
