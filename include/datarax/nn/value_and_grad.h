// value_and_grad: a loss function's value and its gradient w.r.t. the parameters — the seed's
// nnx.grad / jax.value_and_grad, for a function written with nn's ops.
//
//   auto loss_fn = [&](const VarTree& p, const VarTree& batch) {
//     Var logits = model(p, batch["image"]);
//     expose("logits", logits);                        // optional: kept for metrics
//     return softmax_cross_entropy(logits, batch["label"]);
//   };
//   nn::ValueAndGrad grad_fn(loss_fn);                  // one per device thread
//   auto [loss, grads] = grad_fn(params, batch);        // grads: params' keys and shapes
//
// The first call records the function (runs it once, eagerly, on Vars); later calls with the same
// keys, dtypes and shapes replay the recording on the new values without calling the function —
// jit's trace-once, so the function must not branch on values — and allocate nothing: buffers
// were planned at recording. Other shapes (a last, smaller batch) record again; recordings()
// counts them. Only the latest recording is kept.
//
// Ownership: the returned gradient Tree (and outputs()) share buffers that this object overwrites
// at its next call; copy() what must outlive it. params and batch are read, never written, and
// only during the call. A ValueAndGrad is used by one thread at a time (each device its own).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "datarax/nn/graph.h"
#include "datarax/nn/var_tree.h"
#include "datarax/tree.h"

namespace datarax::nn {

using LossFn = std::function<Var(const VarTree& params, const VarTree& batch)>;

class ValueAndGrad {
 public:
  explicit ValueAndGrad(LossFn fn);
  ~ValueAndGrad();
  ValueAndGrad(const ValueAndGrad&) = delete;
  ValueAndGrad& operator=(const ValueAndGrad&) = delete;

  struct Result {
    double loss;
    const Tree& grads;
  };
  // The loss and d loss / d params. Every leaf of params is a parameter (f32 or f64); batch
  // leaves are inputs (any dtype; no gradient).
  Result operator()(const Tree& params, const Tree& batch);
  // The loss alone (a forward pass; evaluation).
  double value(const Tree& params, const Tree& batch);

  // The values exposed with expose() during the last call, by name.
  const Tree& outputs() const { return outputs_; }
  int recordings() const { return recordings_; }
  // The current recording (null before the first call): for check_gradients and tests.
  Graph* graph() const { return graph_.get(); }

 private:
  struct Leaf {
    std::string key;
    DType dtype;
    Shape shape;
    Var var;
  };
  void prepare(const Tree& params, const Tree& batch);
  static bool same_signature(const std::vector<Leaf>& leaves, const Tree& tree);

  LossFn fn_;
  std::unique_ptr<Graph> graph_;
  std::vector<Leaf> params_, batch_;
  Var loss_;
  Tree grads_, outputs_;
  int recordings_ = 0;
  bool fresh_ = false;  // recorded by this call: its forward already ran
};

// Marks `v` as an output of the function being recorded, under `name` (Graph::expose).
void expose(std::string name, Var v);

}  // namespace datarax::nn
