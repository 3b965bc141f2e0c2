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

  const std::string name = detail::quoted(dataset_.name());
  if (const auto* arrays = dynamic_cast<const ArrayDataset*>(&dataset_)) {
    try {
      arrays->check();
    } catch (const InvalidArgumentError& e) {
      fail(e.what());
    }
  }
  fields_ = dataset_.fields();
  if (fields_.empty()) fail("data set " + name + " has no fields; an example needs at least one leaf");
  for (const Field& f : fields_) {
    if (f.name.empty() || f.name == "mask" || f.name == "count")
      fail("data set " + name + " has a field named " + detail::quoted(f.name) +
           "; field names must be non-empty and not \"mask\" or \"count\" (the Loader's)");
    shapes_.push_back(Shape(std::vector<std::int64_t>{0}));  // set below
  }
  size_ = dataset_.size();
  if (size_ < 0) fail("data set " + name + " has " + std::to_string(size_) + " examples; expected 0 or more");
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

Array& Loader::leaf(Tree& batch, const std::string& key, const Shape& shape, DType dtype) {
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
  // The shapes are made once (on the first step): a step allocates nothing.
  if (rows_.empty()) {
    for (std::size_t f = 0; f < fields_.size(); ++f) {
      std::vector<std::int64_t> dims{b};
      dims.insert(dims.end(), fields_[f].shape.begin(), fields_[f].shape.end());
      shapes_[f] = Shape(std::move(dims));
    }
    mask_shape_ = Shape{b};
    indices_.reserve(static_cast<std::size_t>(b));
    rows_.resize(fields_.size());
  }
  for (std::size_t f = 0; f < fields_.size(); ++f) rows_[f] = leaf(batch, fields_[f].name, shapes_[f], fields_[f].dtype);
  auto mask = leaf(batch, "mask", mask_shape_, DType::f32).data<float>();
  Array& count = leaf(batch, "count", scalar_shape_, DType::f32);

  const std::int64_t global_begin = step_ * options_.global_batch;
  const std::int64_t begin = global_begin + options_.part_index * b;
  indices_.clear();
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int64_t position = begin + r;
    const bool real = position < size_;
    if (real)
      indices_.push_back(options_.shuffle ? order_[static_cast<std::size_t>(position)] : position);
    mask[static_cast<std::size_t>(r)] = real ? 1.0f : 0.0f;
  }
  dataset_.read(indices_, rows_);
  // Padding rows (real rows come first): zeros.
  const std::int64_t real = static_cast<std::int64_t>(indices_.size());
  for (std::size_t f = 0; f < fields_.size() && real < b; ++f) {
    const std::size_t row = static_cast<std::size_t>(rows_[f].nbytes() / static_cast<std::size_t>(b));
    std::memset(static_cast<std::byte*>(rows_[f].raw()) + static_cast<std::size_t>(real) * row, 0,
                static_cast<std::size_t>(b - real) * row);
  }
  count.data<float>()[0] =
      static_cast<float>(std::min(options_.global_batch, size_ - global_begin));
  ++step_;
  return true;
}

}  // namespace datarax::data
