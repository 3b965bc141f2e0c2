#include "datarax/array.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "core/buffer_pool.h"
#include "core/strings.h"

namespace datarax {

namespace {

// Converts `value` to T, checking that integer dtypes get a whole number in range.
template <class T>
T convert_checked(double value, const char* op) {
  if constexpr (std::is_same_v<T, bool>) {
    return value != 0.0;
  } else if constexpr (std::is_integral_v<T>) {
    const double lo = static_cast<double>(std::numeric_limits<T>::min());
    const double hi = static_cast<double>(std::numeric_limits<T>::max());
    if (!(value >= lo && value <= hi) || std::trunc(value) != value) {
      std::ostringstream msg;
      msg << op << ": value " << value << " is not representable as " << to_string(dtype_v<T>)
          << " (whole numbers from " << +std::numeric_limits<T>::min() << " to "
          << +std::numeric_limits<T>::max() << ")";
      throw InvalidArgumentError(msg.str());
    }
    return static_cast<T>(value);
  } else {
    return static_cast<T>(static_cast<float>(value));
  }
}

template <>
double convert_checked<double>(double value, const char*) {
  return value;
}

template <class T>
double as_double(T v) {
  return static_cast<double>(static_cast<std::conditional_t<std::is_integral_v<T>, T, float>>(v));
}

}  // namespace

Array::Array() = default;

Array::Array(DType dtype, Shape shape, Device device, std::shared_ptr<std::byte> data)
    : dtype_(dtype), shape_(std::move(shape)), device_(device), data_(std::move(data)) {}

Array Array::empty(Shape shape, DType dtype, Device device) {
  const std::size_t n = static_cast<std::size_t>(shape.numel()) * byte_size(dtype);
  return Array(dtype, std::move(shape), device, detail::allocate_buffer(n));
}

Array Array::zeros(Shape shape, DType dtype, Device device) {
  Array a = empty(std::move(shape), dtype, device);
  if (a.nbytes() > 0) std::memset(a.raw(), 0, a.nbytes());
  return a;
}

namespace {
void fill_checked(Array& a, double value, const char* op) {
  visit_dtype(a.dtype(), [&](auto t) {
    using T = decltype(t);
    const T v = convert_checked<T>(value, op);
    T* p = static_cast<T*>(a.raw());
    for (std::int64_t i = 0, n = a.numel(); i < n; ++i) p[i] = v;
  });
}
}  // namespace

Array Array::full(Shape shape, double value, DType dtype, Device device) {
  Array a = empty(std::move(shape), dtype, device);
  fill_checked(a, value, "Array::full");
  return a;
}

void Array::fill(double value) { fill_checked(*this, value, "Array::fill"); }

Array Array::adopt(DType dtype, Shape shape, Device device, std::shared_ptr<void> owner, void* data,
                   std::size_t count, const char* op) {
  if (static_cast<std::int64_t>(count) != shape.numel())
    throw InvalidArgumentError(std::string(op) + ": shape " + shape.to_string() + " needs " +
                               std::to_string(shape.numel()) + " values, got " +
                               std::to_string(count));
  std::shared_ptr<std::byte> bytes(std::move(owner), static_cast<std::byte*>(data));
  return Array(dtype, std::move(shape), device, std::move(bytes));
}

void Array::check_dtype(DType requested, const char* op) const {
  if (requested != dtype_)
    throw DTypeError(std::string(op) + ": requested " + std::string(datarax::to_string(requested)) +
                     " but the array holds " + std::string(datarax::to_string(dtype_)));
}

std::int64_t Array::flat_index(std::initializer_list<std::int64_t> index) const {
  if (static_cast<int>(index.size()) != rank())
    throw InvalidArgumentError("Array::at: " + std::to_string(index.size()) +
                               " indices given for an array of rank " + std::to_string(rank()) +
                               " (shape " + shape_.to_string() + ")");
  std::int64_t flat = 0;
  int axis = 0;
  for (std::int64_t i : index) {
    const std::int64_t extent = shape_[axis];
    if (i < 0 || i >= extent)
      throw InvalidArgumentError("Array::at: index " + std::to_string(i) + " on axis " +
                                 std::to_string(axis) + " is out of range 0.." +
                                 std::to_string(extent - 1) + " (shape " + shape_.to_string() +
                                 ")");
    flat = flat * extent + i;
    ++axis;
  }
  return flat;
}

Array Array::slice(std::int64_t start, std::int64_t stop) const {
  if (rank() == 0) throw InvalidArgumentError("Array::slice: a 0-d array has no leading axis");
  const std::int64_t n = shape_[0];
  if (start < 0 || stop < start || stop > n)
    throw InvalidArgumentError("Array::slice: range [" + std::to_string(start) + ", " +
                               std::to_string(stop) + ") is out of bounds for a leading axis of size " +
                               std::to_string(n) + " (valid: 0 <= start <= stop <= " +
                               std::to_string(n) + ")");
  const std::size_t offset =
      static_cast<std::size_t>(start * shape_.row_numel()) * itemsize();
  std::shared_ptr<std::byte> view(data_, data_ ? data_.get() + offset : nullptr);
  return Array(dtype_, shape_.with_leading(stop - start), device_, std::move(view));
}

Array Array::reshape(Shape shape) const {
  if (shape.numel() != numel())
    throw InvalidArgumentError("Array::reshape: cannot view " + shape_.to_string() + " (" +
                               std::to_string(numel()) + " elements) as " + shape.to_string() +
                               " (" + std::to_string(shape.numel()) + " elements)");
  return Array(dtype_, std::move(shape), device_, data_);
}

Array Array::with_device(Device device) const {
  if (device.kind != DeviceKind::cpu || device_.kind != DeviceKind::cpu)
    throw InvalidArgumentError("Array::with_device: views across devices need host memory; " +
                               device_.to_string() + " -> " + device.to_string() +
                               " is not between CPU devices (use copy_to)");
  return Array(dtype_, shape_, device, data_);
}

Array Array::copy() const { return copy_to(device_); }

Array Array::copy_to(Device device) const {
  if (device.kind != DeviceKind::cpu)
    throw InvalidArgumentError("Array::copy_to: " + device.to_string() +
                               " is not a CPU device; this build places arrays on CPU devices only");
  Array out = empty(shape_, dtype_, device);
  if (nbytes() > 0) std::memcpy(out.raw(), raw(), nbytes());
  return out;
}

Array Array::astype(DType dtype) const {
  Array out = empty(shape_, dtype, device_);
  visit_dtype(dtype_, [&](auto s) {
    using S = decltype(s);
    visit_dtype(dtype, [&](auto d) {
      using D = decltype(d);
      const S* src = reinterpret_cast<const S*>(raw());
      D* dst = reinterpret_cast<D*>(out.raw());
      for (std::int64_t i = 0, n = numel(); i < n; ++i) {
        if constexpr (std::is_same_v<D, S>)
          dst[i] = src[i];
        else if constexpr (std::is_same_v<D, bool>)
          dst[i] = as_double(src[i]) != 0.0;
        else if constexpr (std::is_same_v<D, bfloat16> || std::is_same_v<D, float16>)
          dst[i] = D(static_cast<float>(as_double(src[i])));
        else
          dst[i] = static_cast<D>(as_double(src[i]));
      }
    });
  });
  return out;
}

void Array::copy_from(const Array& src) {
  if (src.dtype_ != dtype_ || src.shape_ != shape_)
    throw InvalidArgumentError("Array::copy_from: source is " + std::string(datarax::to_string(src.dtype_)) +
                               src.shape_.to_string() + ", destination is " +
                               std::string(datarax::to_string(dtype_)) + shape_.to_string() +
                               "; dtype and shape must match");
  if (nbytes() > 0 && src.raw() != raw()) std::memmove(raw(), src.raw(), nbytes());
}

bool Array::shares_buffer_with(const Array& other) const {
  if (!data_ || !other.data_) return false;
  return !data_.owner_before(other.data_) && !other.data_.owner_before(data_);
}

std::string Array::to_string() const {
  std::ostringstream os;
  os << datarax::to_string(dtype_) << shape_.to_string() << " on " << device_.to_string();
  if (numel() <= 16 && data_) {
    os << " {";
    visit_dtype(dtype_, [&](auto t) {
      using T = decltype(t);
      const T* p = reinterpret_cast<const T*>(raw());
      for (std::int64_t i = 0; i < numel(); ++i) os << (i ? ", " : "") << as_double(p[i]);
    });
    os << "}";
  }
  return os.str();
}

bool bitwise_equal(const Array& a, const Array& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  return a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace datarax
