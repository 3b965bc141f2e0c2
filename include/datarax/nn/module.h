// Module: a model, the C++ form of a Flax NNX module — a class that declares named parameters and
// submodules in its constructor and computes with them in its own call operator:
//
//   struct Mlp : nn::Module {
//     nn::Dense hidden{*this, "dense_0", 784, 128}, out{*this, "dense_1", 128, 10};
//     Var operator()(const VarTree& p, Var x) const { return out(p, relu(hidden(p, x))); }
//   };
//   Mlp model;
//   Tree params = model.init(/*seed=*/0);   // {dense_0/bias, dense_0/kernel, dense_1/...}
//
// Parameters are a Tree keyed by attribute path ("block_1/ln_1/scale"), so sharding rules,
// optimizers, checkpoints, safetensors and the seed's DataParallelModule take any model unchanged.
// The module object holds declarations only (no values, no gradients): it is immutable after
// construction and may be shared by every device thread; values live in the Tree, and gradients
// come from value_and_grad (value_and_grad.h).
//
// A submodule is a member constructed with its parent and its name: Module(parent, "dense_0").
// Modules are neither copied nor moved (a submodule registers itself with its root).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datarax/dtype.h"
#include "datarax/nn/param.h"
#include "datarax/sharding_rules.h"
#include "datarax/tree.h"

namespace datarax::nn {

class Module {
 public:
  Module() = default;  // a root (a whole model)
  Module(Module& parent, std::string name);
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // "" for a root, "block_1/ln_1" for a submodule.
  const std::string& path() const { return path_; }
  // Every parameter of the whole model (the root's), in declaration order.
  const std::vector<ParamSpec>& param_specs() const { return root_->specs_; }
  std::int64_t num_params() const;

  // The parameters drawn from `seed` (each from seed and its key path), as f32 or f64.
  Tree init(std::uint64_t seed, DType dtype = DType::f32) const;
  // One rule per parameter declared with a non-replicated sharding, by its exact key: the
  // layout of tensor parallelism over the axes the specs name.
  ShardingRules sharding_rules() const;

 protected:
  // Declares a parameter of this module; its key is path()/name. A key declared twice, an empty
  // or '/'-containing name, or a negative extent is refused naming it.
  Param param(const std::string& name, Shape shape, Initializer init, PartitionSpec sharding = {});

 private:
  Module* root_ = this;
  std::string path_;
  std::vector<ParamSpec> specs_;  // the root's only
};

}  // namespace datarax::nn
