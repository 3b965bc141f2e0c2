// TreeLayerParams: a ParallelMlp's LayerParams over plain parameter and gradient trees ("dense_<l>/
// kernel", "dense_<l>/bias"), for the nn tests that run the MLP on one device or on each device's
// local blocks.
#pragma once

#include <string>

#include "datarax/nn/parallel_mlp.h"
#include "datarax/tree.h"

namespace datarax::nn::test {

template <class T>
class TreeLayerParams final : public LayerParams<T> {
 public:
  TreeLayerParams(const Tree& params, Tree& grads) : params_(params), grads_(grads) {}
  typename LayerParams<T>::Weights acquire(int l, bool) override {
    return {params_.at(key(l, "kernel")).template data<T>(), params_.at(key(l, "bias")).template data<T>()};
  }
  void release(int) override {}
  typename LayerParams<T>::Gradients gradients(int l) override {
    return {grads_.at(key(l, "kernel")).template data<T>(), grads_.at(key(l, "bias")).template data<T>()};
  }
  void gradients_done(int) override {}

 private:
  static std::string key(int l, const char* what) { return "dense_" + std::to_string(l) + "/" + what; }
  const Tree& params_;
  Tree& grads_;
};

}  // namespace datarax::nn::test
