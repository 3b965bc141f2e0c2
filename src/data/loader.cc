#include "datarax/data/loader.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/strings.h"
#include "datarax/data/permutation.h"

namespace datarax::data {

namespace {

[[noreturn]] void fail(const std::string& message) {
  throw InvalidArgumentError("Loader: " + message);
}

std::string describe(const Array& a) {
  return std::string(to_string(a.dtype())) + a.shape().to_string();
}

}  // namespace

Loader::Loader(const Dataset& dataset, LoaderOptions options)
    : dataset_(dataset), options_(options) {
  const LoaderOptions& o = options_;
  if (o.global_batch < 1)
    fail("global_batch " + std::to_string(o.global_batch) + " is out of range; expected 1 or more");
  if (o.part_count < 1)
    fail("part_count " + std::to_string(o.part_count) + " is out of range; expected 1 or more");
  if (o.part_index < 0 || o.part_index >= o.part_count)
    fail("part_index " + std::to_string(o.part_index) + " is out of range 0.." + std::to_string(o.part_count - 1) +
         " (part_count " + std::to_string(o.part_count) + ")");
  if (o.global_batch % o.part_count != 0)
    fail("global_batch " + std::to_string(o.global_batch) + " is not divisible by part_count " +
         std::to_string(o.part_count) + "; every part is an equal slice of each batch");

  const std::string name = detail::quoted(dataset_.name);
  const Array& images = dataset_.images;
  const Array& labels = dataset_.labels;
  if (images.rank() < 1 || labels.rank() < 1)
    fail("data set " + name + " has images " + describe(images) + " and labels " +
         describe(labels) + "; both need a leading axis of examples");
  if (images.shape()[0] != labels.shape()[0])
    fail("data set " + name + " has " + std::to_string(images.shape()[0]) + " images but " +
         std::to_string(labels.shape()[0]) + " labels");
  if (images.device().kind != DeviceKind::cpu || labels.device().kind != DeviceKind::cpu)
    fail("data set " + name + " must be in host memory (on a cpu device); it is on " +
         images.device().to_string() + " and " + labels.device().to_string());
  size_ = images.shape()[0];
  local_batch_ = o.global_batch / o.part_count;
  start_epoch(0);
}

std::int64_t Loader::steps_per_epoch() const {
  const std::int64_t b = options_.global_batch;
  return options_.drop_last ? size_ / b : (size_ + b - 1) / b;
}

void Loader::start_epoch(std::int64_t epoch) {
  if (epoch < 0)
    fail("start_epoch: epoch " + std::to_string(epoch) + " is negative; expected 0 or more");
  epoch_ = epoch;
  step_ = 0;
  if (options_.shuffle) {
    order_.resize(static_cast<std::size_t>(size_));
    fill_epoch_permutation(order_, options_.seed, epoch);
  }
}

void Loader::seek(std::int64_t step) {
  if (step < 0 || step > steps_per_epoch())
    fail("seek: step " + std::to_string(step) + " is out of range 0.." + std::to_string(steps_per_epoch()));
  step_ = step;
}

Array& Loader::leaf(Tree& batch, const char* key, const Shape& shape, DType dtype) {
  if (batch.contains(key)) {
    Array& a = batch.at(key);
    if (a.dtype() == dtype && a.shape() == shape && a.device().kind == DeviceKind::cpu) return a;
  }
  batch.set(key, Array::empty(shape, dtype));
  return batch.at(key);
}

bool Loader::next(Tree& batch) {
  if (step_ >= steps_per_epoch()) return false;
  const std::int64_t b = local_batch_;
  const Array& images = dataset_.images;
  const Array& labels = dataset_.labels;
  // The shapes are made once (on the first step): a step allocates nothing.
  if (inputs_shape_.rank() == 0) {
    inputs_shape_ = images.shape().with_leading(b);
    labels_shape_ = labels.shape().with_leading(b);
    mask_shape_ = Shape{b};
  }
  Array& inputs = leaf(batch, "inputs", inputs_shape_, images.dtype());
  Array& out_labels = leaf(batch, "labels", labels_shape_, labels.dtype());
  auto mask = leaf(batch, "mask", mask_shape_, DType::f32).data<float>();
  Array& count = leaf(batch, "count", scalar_shape_, DType::f32);

  // Row sizes from the dims after the first: row_numel divides by dim 0, which may be 0 here.
  const std::size_t image_row = static_cast<std::size_t>(inputs.shape().row_numel()) * images.itemsize();
  const std::size_t label_row = static_cast<std::size_t>(out_labels.shape().row_numel()) * labels.itemsize();
  const auto* image_src = static_cast<const std::byte*>(images.raw());
  const auto* label_src = static_cast<const std::byte*>(labels.raw());
  auto* image_dst = static_cast<std::byte*>(inputs.raw());
  auto* label_dst = static_cast<std::byte*>(out_labels.raw());

  const std::int64_t global_begin = step_ * options_.global_batch;
  const std::int64_t begin = global_begin + options_.part_index * b;
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int64_t position = begin + r;
    const std::size_t ri = static_cast<std::size_t>(r);
    if (position < size_) {
      const std::size_t src = static_cast<std::size_t>(
          options_.shuffle ? order_[static_cast<std::size_t>(position)] : position);
      std::memcpy(image_dst + ri * image_row, image_src + src * image_row, image_row);
      std::memcpy(label_dst + ri * label_row, label_src + src * label_row, label_row);
      mask[ri] = 1.0f;
    } else {
      std::memset(image_dst + ri * image_row, 0, image_row);
      std::memset(label_dst + ri * label_row, 0, label_row);
      mask[ri] = 0.0f;
    }
  }
  count.data<float>()[0] =
      static_cast<float>(std::min(options_.global_batch, size_ - global_begin));
  ++step_;
  return true;
}

}  // namespace datarax::data
