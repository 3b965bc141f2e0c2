// classifier (train/model.h).
#include "datarax/train/model.h"

#include <cstdint>
#include <utility>

#include "datarax/nn/cross_entropy.h"
#include "datarax/nn/ops/cross_entropy.h"

namespace datarax::train {

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
    // nn::count_correct: rows with mask != 0 whose first largest logit is at their label.
    return static_cast<double>(nn::count_correct(logits.data<float>(), batch.at("labels").data<std::int32_t>(),
                                                 batch.at("mask").data<float>(), logits.shape()[0],
                                                 logits.shape().row_numel()));
  };
  return m;
}

}  // namespace datarax::train
