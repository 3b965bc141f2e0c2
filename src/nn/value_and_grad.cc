// ValueAndGrad: record once, replay (value_and_grad.h).
#include "datarax/nn/value_and_grad.h"

#include <utility>

#include "datarax/error.h"
#include "datarax/nn/blas.h"

namespace datarax::nn {

ValueAndGrad::ValueAndGrad(LossFn fn) : fn_(std::move(fn)) {
  if (!fn_) throw InvalidArgumentError("ValueAndGrad: the loss function is empty");
  // One device thread per device already uses the cores: each product on its caller's thread
  // (blas.h), unless the program set a count itself.
  use_single_threaded_blas_by_default();
}
ValueAndGrad::~ValueAndGrad() = default;

void expose(std::string name, Var v) { v.graph().expose(std::move(name), v); }

bool ValueAndGrad::same_signature(const std::vector<Leaf>& leaves, const Tree& tree) {
  if (leaves.size() != tree.size()) return false;
  std::size_t i = 0;
  for (const auto& [key, a] : tree) {
    const Leaf& l = leaves[i++];
    if (l.key != key || l.dtype != a.dtype() || l.shape != a.shape()) return false;
  }
  return true;
}

void ValueAndGrad::prepare(const Tree& params, const Tree& batch) {
  fresh_ = false;
  if (graph_ && same_signature(params_, params) && same_signature(batch_, batch)) {
    std::size_t i = 0;
    for (const auto& kv : params) graph_->bind(params_[i++].var, kv.second);
    i = 0;
    for (const auto& kv : batch) graph_->bind(batch_[i++].var, kv.second);
    // An exposed leaf now holds the new array (op outputs keep their buffers).
    for (const auto& [name, id] : graph_->exposed()) outputs_.at(name) = graph_->var(id).value();
    return;
  }
  // Record: a new graph, the function run once on Vars.
  auto graph = std::make_unique<Graph>();
  std::vector<Leaf> pleaves, bleaves;
  VarTree pvars, bvars;
  for (const auto& [key, a] : params) {
    Var v = graph->parameter(key, a);
    pleaves.push_back({key, a.dtype(), a.shape(), v});
    pvars.set(key, v);
  }
  for (const auto& [key, a] : batch) {
    Var v = graph->input(key, a);
    bleaves.push_back({key, a.dtype(), a.shape(), v});
    bvars.set(key, v);
  }
  Var loss = fn_(pvars, bvars);
  if (!loss.valid() || &loss.graph() != graph.get())
    throw InvalidArgumentError("ValueAndGrad: the loss function returned a Var that is not of this recording");
  if (loss.shape().numel() != 1)
    throw InvalidArgumentError("ValueAndGrad: the loss function returned shape " + loss.shape().to_string() +
                               "; a loss has one element (reduce it with mean or sum)");
  graph->finish();
  Tree grads, outputs;
  for (const Leaf& l : pleaves) grads.set(l.key, graph->grad(l.var));
  for (const auto& [name, id] : graph->exposed()) outputs.set(name, graph->var(id).value());
  graph_ = std::move(graph);
  params_ = std::move(pleaves);
  batch_ = std::move(bleaves);
  loss_ = loss;
  grads_ = std::move(grads);
  outputs_ = std::move(outputs);
  ++recordings_;
  fresh_ = true;
}

ValueAndGrad::Result ValueAndGrad::operator()(const Tree& params, const Tree& batch) {
  prepare(params, batch);
  if (!fresh_) graph_->forward();
  graph_->backward(loss_);
  return {loss_.value().dtype() == DType::f64 ? loss_.value().item<double>() : loss_.value().item<float>(), grads_};
}

double ValueAndGrad::value(const Tree& params, const Tree& batch) {
  prepare(params, batch);
  if (!fresh_) graph_->forward();
  return loss_.value().dtype() == DType::f64 ? loss_.value().item<double>() : loss_.value().item<float>();
}

}  // namespace datarax::nn
