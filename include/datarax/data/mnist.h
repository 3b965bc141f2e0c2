// MNIST and Fashion-MNIST: 28×28 grey images in 10 classes, as IDX files in one directory.
//
// Both data sets use the same four file names, raw or gzip-compressed (".gz"):
//   train-images-idx3-ubyte  train-labels-idx1-ubyte   (60000 examples)
//   t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte    (10000 examples)
// Debian's dataset-fashion-mnist package installs Fashion-MNIST's in kDefaultFashionMnistDir.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "datarax/array.h"

namespace datarax::data {

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// A labelled data set held in memory: example i is images row i with labels[i].
struct Dataset {
  Array images;      // f32 [N, features]: for MNIST, [N, 784], pixels / 255 in [0, 1], row-major
  Array labels;      // i32 [N]: class indices, for MNIST 0..9
  std::string name;  // for messages and logs: "fashion-mnist/train"
  int num_classes = 0;  // labels are 0..num_classes-1: 10 for MNIST-format data
  std::vector<std::string> files{};  // the files it was read from
};

// Loads split "train" or "test" (the t10k files) from `dir`. For each of images and labels the
// raw file is used when present, else the ".gz" one. Throws InvalidArgumentError naming the
// directory or the files when: the directory is missing; a file
// is missing or not a valid IDX file (see read_idx); the images are not u8 [N, 28, 28] or the
// labels not u8 [N]; the two counts differ; a label is 10 or more. The name is the directory's
// last component and the split: "fashion-mnist/train".
Dataset load_mnist(const std::string& dir, std::string_view split);

}  // namespace datarax::data
