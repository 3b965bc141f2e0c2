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
#include "datarax/data/array_dataset.h"

namespace datarax::data {

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";


// Loads split "train" or "test" (the t10k files) from `dir`. For each of images and labels the
// raw file is used when present, else the ".gz" one. Throws InvalidArgumentError naming the
// directory or the files when: the directory is missing; a file
// is missing or not a valid IDX file (see read_idx); the images are not u8 [N, 28, 28] or the
// labels not u8 [N]; the two counts differ; a label is 10 or more. The name is the directory's
// last component and the split: "fashion-mnist/train".
ArrayDataset load_mnist(const std::string& dir, std::string_view split);

}  // namespace datarax::data
