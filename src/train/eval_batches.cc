// The evaluation batches of a data set (train/eval_batches.h).
#include "train/eval_batches.h"

#include <vector>

namespace datarax::train::detail {

std::vector<Tree> eval_batches_of(const data::Dataset& test, std::int64_t p, std::int64_t n, std::int64_t rows,
                                  const Array& step) {
  const std::int64_t size = test.size(), lo = size * p / n, hi = size * (p + 1) / n;
  const std::int64_t most = (size + n - 1) / n;  // the largest position's rows
  const std::int64_t batches = (most + rows - 1) / rows;
  const std::vector<data::Field> fields = test.fields();
  std::vector<Tree> out;
  std::vector<std::int64_t> indices;
  std::vector<Array> leaves(fields.size());
  for (std::int64_t b = 0; b < batches; ++b) {
    Tree t;
    for (std::size_t f = 0; f < fields.size(); ++f) {
      std::vector<std::int64_t> dims{rows};
      dims.insert(dims.end(), fields[f].shape.begin(), fields[f].shape.end());
      leaves[f] = Array::zeros(Shape(dims), fields[f].dtype);
      t.set(fields[f].name, leaves[f]);
    }
    Array mask = Array::zeros({rows}, DType::f32);
    indices.clear();
    for (std::int64_t r = 0; r < rows && lo + b * rows + r < hi; ++r) {
      indices.push_back(lo + b * rows + r);
      mask.data<float>()[static_cast<std::size_t>(r)] = 1.0f;
    }
    if (!indices.empty()) test.read(indices, leaves);
    t.set("mask", mask);
    t.set("count", Array::scalar<float>(1.0f));
    t.set("first_example", Array::scalar<std::int64_t>(lo + b * rows));
    t.set("step", step);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace datarax::train::detail
