// ArrayDataset: a labelled data set held in memory as two arrays — example i is row i of `images`
// with labels[i] — the Dataset (dataset.h) of MNIST-format data (mnist.h) and of any data a
// program already has in arrays. Its fields are "inputs" (images' dtype, a row's shape) and
// "labels" (labels' dtype, a row's shape).
#pragma once

#include <string>
#include <vector>

#include "datarax/array.h"
#include "datarax/data/dataset.h"

namespace datarax::data {

struct ArrayDataset : Dataset {
  Array images;      // [N, ...]: for MNIST f32 [N, 784], pixels / 255 in [0, 1], row-major
  Array labels;      // [N, ...]: for a classifier i32 [N], class indices
  std::string title;  // for messages and logs: "fashion-mnist/train" (name())
  int num_classes = 0;  // labels are 0..num_classes-1: 10 for MNIST-format data
  std::vector<std::string> files{};  // the files it was read from

  ArrayDataset() = default;
  ArrayDataset(Array images_, Array labels_, std::string title_, int num_classes_ = 0)
      : images(std::move(images_)), labels(std::move(labels_)), title(std::move(title_)), num_classes(num_classes_) {}

  // Checks that images and labels have one leading axis of N examples each, on the host
  // (InvalidArgumentError naming the data set otherwise). The Loader calls it.
  void check() const;

  std::int64_t size() const override { return images.rank() < 1 ? 0 : images.shape()[0]; }
  const std::string& name() const override { return title; }
  std::vector<Field> fields() const override;
  void read(std::span<const std::int64_t> indices, std::span<Array> rows) const override;
  // "60000 examples of 784 features, 10 classes, images crc32 1a2b3c4d, labels crc32 5e6f7a8b".
  std::string describe() const override;
};

// The crc32 of an array's bytes, as 8 hex digits.
std::string crc32_hex(const Array& a);

}  // namespace datarax::data
