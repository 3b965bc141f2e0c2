// classifier (train/model.h).
#include "datarax/train/model.h"

#include <cstdint>
#include <utility>

#include "datarax/nn/ops/cross_entropy.h"

namespace datarax::train {

namespace {

// Rows (mask != 0) whose largest logit is at their label; the first of equal largest ones.
double count_correct_rows(const Array& logits, const Array& labels, const Array& mask) {
  const std::int64_t rows = logits.shape()[0], classes = logits.shape().row_numel();
  const std::span<const float> z = logits.data<float>();
  const std::span<const std::int32_t> y = labels.data<std::int32_t>();
  const std::span<const float> m = mask.data<float>();
  double correct = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    if (m[static_cast<std::size_t>(r)] == 0.0f) continue;
    const float* row = z.data() + r * classes;
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;
    correct += best == y[static_cast<std::size_t>(r)] ? 1 : 0;
  }
  return correct;
}

}  // namespace

Model classifier(const nn::Module& module, std::function<nn::Var(const nn::VarTree&, nn::Var)> forward, std::string name) {
  Model m;
  m.module = &module;
  m.name = std::move(name);
  m.loss = [forward = std::move(forward)](const nn::VarTree& p, const nn::VarTree& batch) {
    nn::Var logits = forward(p, batch["inputs"]);
    nn::expose("logits", logits);
    return nn::softmax_cross_entropy(logits, batch["labels"], batch["mask"], batch["count"]);
  };
  m.correct = [](const Tree& outputs, const Tree& batch) {
    const Array& logits = outputs.at("logits");
    if (logits.dtype() != DType::f32 || batch.at("labels").dtype() != DType::i32) return 0.0;
    return count_correct_rows(logits, batch.at("labels"), batch.at("mask"));
  };
  return m;
}

}  // namespace datarax::train
