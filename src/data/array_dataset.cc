// ArrayDataset (data/array_dataset.h).
#include "datarax/data/array_dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax::data {

namespace {

std::string describe_array(const Array& a) { return std::string(to_string(a.dtype())) + a.shape().to_string(); }

// The shape of one row: every dimension but the first.
Shape row_shape(const Shape& s) { return Shape(std::vector<std::int64_t>(s.begin() + 1, s.end())); }

}  // namespace

std::string crc32_hex(const Array& a) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* bytes = static_cast<const Bytef*>(a.raw());
  // zlib takes uInt lengths: feed in pieces below 4 GiB.
  for (std::size_t at = 0; at < a.nbytes(); at += std::size_t{1} << 30) {
    const std::size_t n = std::min(a.nbytes() - at, std::size_t{1} << 30);
    crc = crc32(crc, bytes + at, static_cast<uInt>(n));
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08lx", static_cast<unsigned long>(crc));
  return buf;
}

void ArrayDataset::check() const {
  const std::string n = datarax::detail::quoted(title);
  if (images.rank() < 1 || labels.rank() < 1)
    throw InvalidArgumentError("data set " + n + " has images " + describe_array(images) + " and labels " +
                               describe_array(labels) + "; both need a leading axis of examples");
  if (images.shape()[0] != labels.shape()[0])
    throw InvalidArgumentError("data set " + n + " has " + std::to_string(images.shape()[0]) + " images but " +
                               std::to_string(labels.shape()[0]) + " labels");
  if (images.device().kind != DeviceKind::cpu || labels.device().kind != DeviceKind::cpu)
    throw InvalidArgumentError("data set " + n + " must be in host memory (on a cpu device); it is on " +
                               images.device().to_string() + " and " + labels.device().to_string());
}

std::vector<Field> ArrayDataset::fields() const {
  return {{"inputs", images.dtype(), row_shape(images.shape())}, {"labels", labels.dtype(), row_shape(labels.shape())}};
}

void ArrayDataset::read(std::span<const std::int64_t> indices, std::span<Array> rows) const {
  const Array* sources[2] = {&images, &labels};
  for (std::size_t f = 0; f < 2; ++f) {
    const Array& src = *sources[f];
    std::size_t row = src.itemsize();  // bytes of one example (no Shape made: read() allocates nothing)
    for (int d = 1; d < src.rank(); ++d) row *= static_cast<std::size_t>(src.shape()[d]);
    const auto* from = static_cast<const std::byte*>(src.raw());
    auto* to = static_cast<std::byte*>(rows[f].raw());
    for (std::size_t r = 0; r < indices.size(); ++r)
      std::memcpy(to + r * row, from + static_cast<std::size_t>(indices[r]) * row, row);
  }
}

std::string ArrayDataset::describe() const {
  return std::to_string(size()) + " examples of " + std::to_string(row_shape(images.shape()).numel()) + " features, " +
         std::to_string(num_classes) + " classes, images crc32 " + crc32_hex(images) + ", labels crc32 " +
         crc32_hex(labels);
}

}  // namespace datarax::data
