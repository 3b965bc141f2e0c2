// Model: what train() trains — any module (nn/module.h) and the loss of a device's rows,
// written forward only; the trainer records it once, differentiates it and replays it
// (nn/value_and_grad.h's way) on every layout.
//
//   MyNet net;                                      // a module: parameters declared, ops in operator()
//   train::Model model = train::classifier(net, [&](const nn::VarTree& p, nn::Var x) { return net(p, x); },
//                                          "my net");
//   train::train(model, train_set, test_set, config);
//
// The batch the loss gets (one device's rows): the data set's fields ([b, ...] each: "inputs" and
// "labels" for an ArrayDataset), "mask" f32 [b] (1 for a real example, 0 for a padding row),
// "count" f32 [] — the number of real examples in the whole GLOBAL batch divided by the data
// axis' size (each device's share) — and two i64 [] counters for randomness that must not depend
// on the layout (nn::dropout takes them as they are):
//
//   "step"           the global optimizer step, from 1 (StepMetrics::step; a resumed run goes
//                    on counting, so it draws what the uninterrupted run drew). In evaluation:
//                    the steps trained so far.
//   "first_example"  the index in the GLOBAL batch of this device's first row: its data position
//                    times the rows per device (the devices of one model group hold the same
//                    rows, and the same number). In evaluation: the index in the test set.
//
// The loss returns
//
//   Σ over its rows of mask · (that example's loss) / count
//
// so that the MEAN over the data axis of the devices' losses and gradients (what the trainer
// reduces) is the global batch's mean — exact also for a padded last batch, on any device count.
// softmax_cross_entropy(logits, labels, mask, count) is exactly that for a classifier. (In
// evaluation, count is 1: the loss is a sum over the rows.)
//
// Training and evaluation: `loss` is the training loss; a model that computes differently when
// it evaluates (no dropout) gives `eval_loss` too, which the evaluation of every epoch runs
// instead (recorded apart, forward only).
//
// Layouts come from the parameters' sharding specs (ParamSpec::sharding): over a mesh with a
// "model" axis each device gets its blocks of the split tensors, and the module's layers must
// then compute with blocks (nn::Dense does, from its column_parallel/row_parallel options;
// ops/collective.h has the collectives for your own). ZeRO and FSDP need nothing of the model.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "datarax/nn/module.h"
#include "datarax/nn/value_and_grad.h"
#include "datarax/tree.h"

namespace datarax::train {

struct Model {
  const nn::Module* module = nullptr;  // its parameter specs: keys, shapes, initializers, sharding
  nn::LossFn loss;                     // as above: the training loss
  // Optional: the loss in evaluation, from the same batch, when it differs from the training loss
  // (a model with dropout: the loss without it); it exposes what `correct` reads, as `loss` does.
  // Unset: evaluation runs `loss`.
  nn::LossFn eval_loss;
  // Optional: the correct predictions among the device's rows (mask 1), from the values the loss
  // exposed (nn::expose) and the batch; unset: the run reports no accuracy (0). Called after
  // every step and on every evaluation batch: it must not allocate.
  std::function<double(const Tree& outputs, const Tree& batch)> correct;
  // In the header, and in the run's identity (a resume must match): "MLP 784-512-512-10 (relu)".
  std::string name;
  // Optional: the module's parameters from a file's tensors and its __metadata__
  // (TrainConfig::init_path), for a model whose files use another layout (GPT-2's Hugging Face
  // names) or say more of the model than its shapes (GPT-2's n_head). Unset: the same keys.
  std::function<Tree(const Tree& file, const std::map<std::string, std::string>& metadata)> from_file;
  // Optional: refuses a model axis of `m` devices the model cannot split (throws, naming the
  // size and the valid ones). The trainer also refuses any split its shapes do not divide.
  std::function<void(int m)> check_model_axis;
};

// A classifier: logits = forward(params, batch["inputs"]) of shape [rows, classes]; the loss is
// softmax_cross_entropy with batch["labels"] (i32 class ids), "mask" and "count"; the accuracy
// compares each row's largest logit with its label.
Model classifier(const nn::Module& module, std::function<nn::Var(const nn::VarTree& params, nn::Var inputs)> forward,
                 std::string name);

}  // namespace datarax::train
