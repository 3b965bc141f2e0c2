// ParamSpec, Param and Initializer: how a module declares a parameter (module.h).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "datarax/partition_spec.h"
#include "datarax/shape.h"

namespace datarax::nn {

// Fills `out` (the parameter's elements, row-major, of `shape`) from `key`, a 64-bit seed derived
// from the model's seed and the parameter's key path, so that one parameter's values never depend
// on which others exist or on the order they are drawn in.
struct Initializer {
  std::string name;  // "zeros", "lecun_normal", ... (for messages and docs)
  std::function<void(std::span<double> out, const Shape& shape, std::uint64_t key)> fill;
};

// Flax's defaults and a few more. fan_in of a kernel is the product of every dimension but the last
// ([in, out] -> in; HWIO conv kernels -> H·W·I).
namespace init {
Initializer zeros();
Initializer ones();
Initializer constant(double value);
Initializer normal(double stddev);
Initializer uniform(double low, double high);
// Normal with stddev √(1/fan_in), truncated at 2 stddevs and rescaled (Flax's Dense and Conv
// kernel default, jax.nn.initializers.lecun_normal).
Initializer lecun_normal();
// Uniform in ±√(6/fan_in) (He / Kaiming uniform: datarax's MLP since its first version).
Initializer he_uniform();
}  // namespace init

// A declared parameter: its key path in the model's Tree, shape, initializer and how it may be
// split over mesh axes (PartitionSpec{} replicates; PartitionSpec{std::nullopt, "model"} splits
// the columns of a kernel over the "model" axis, Megatron's column-parallel layout).
struct ParamSpec {
  std::string key;
  Shape shape;
  Initializer init;
  PartitionSpec sharding;
};

// A handle to a declared parameter; VarTree[param] is its Var in a recording.
class Param {
 public:
  Param() = default;
  Param(std::string key, int index) : key_(std::move(key)), index_(index) {}
  const std::string& key() const { return key_; }
  int index() const { return index_; }

 private:
  std::string key_;
  int index_ = -1;
};

}  // namespace datarax::nn
