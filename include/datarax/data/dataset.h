// Dataset: what the trainer and the Loader read examples from — any data set, not only images.
//
// A data set is N examples, each a few named leaves ("fields") of fixed dtype and shape: an MNIST
// example is {"inputs": f32 [784], "labels": i32 []}, a language model's block is
// {"inputs": i32 [T], "labels": i32 [T]}. The Loader (loader.h) asks for examples by index and
// gets them written into the rows of its batch buffers, so the batch of a step is a Tree with the
// same names, [b, ...] each, plus the Loader's "mask" and "count".
//
//   class MyData : public data::Dataset {
//    public:
//     std::int64_t size() const override { return n; }
//     const std::string& name() const override { return name_; }
//     std::vector<data::Field> fields() const override { return {{"inputs", DType::f32, Shape{16}}, ...}; }
//     void read(std::span<const std::int64_t> indices, std::span<Array> rows) const override { ... }
//     std::string describe() const override { return "...: n examples, crc32 ..."; }
//   };
//
// Implementations must be deterministic (the same index gives the same bytes on every process
// and every run: a resumed or multi-process run depends on it) and read() must be safe to call
// from one thread at a time while other const members run. ArrayDataset (array_dataset.h) holds
// its examples as arrays in memory.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "datarax/array.h"

namespace datarax::data {

// One leaf of an example: its name in the batch, its dtype and its shape (without the batch axis).
struct Field {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  // Examples: indices 0 .. size()-1.
  virtual std::int64_t size() const = 0;
  // For messages and logs: "fashion-mnist/train".
  virtual const std::string& name() const = 0;
  // The leaves of one example, in the order read() fills them; the names must not be "mask" or
  // "count" (the Loader's).
  virtual std::vector<Field> fields() const = 0;
  // Writes example indices[r] into row r of rows[f] for each field f (rows[f] is [R, ...field
  // shape] with R >= indices.size(), on the host, contiguous). Rows past indices.size() are the
  // caller's. Every index is in 0 .. size()-1 (the Loader checks).
  virtual void read(std::span<const std::int64_t> indices, std::span<Array> rows) const = 0;
  // What identifies the contents, for a checkpoint's identity and for comparing processes:
  // sizes and a checksum of every byte, e.g. "60000 examples of 784 features, crc32 1a2b3c4d".
  virtual std::string describe() const = 0;
};

}  // namespace datarax::data
