// Module, VarTree and the initializers (module.h, var_tree.h, param.h).
#include "datarax/nn/module.h"

#include <cmath>
#include <numbers>
#include <utility>

#include "core/splitmix64.h"
#include "datarax/error.h"
#include "datarax/nn/var_tree.h"

namespace datarax::nn {

namespace {

using datarax::detail::SplitMix64;
using datarax::detail::unit_double;

std::int64_t fan_in(const Shape& shape) {
  std::int64_t n = 1;
  for (int d = 0; d + 1 < shape.rank(); ++d) n *= shape[d];
  return shape.rank() <= 1 ? std::max<std::int64_t>(shape.numel(), 1) : std::max<std::int64_t>(n, 1);
}

// A standard normal from two counter-based uniforms (Box-Muller): element i uses draws 2i, 2i+1.
double standard_normal(std::uint64_t key, std::uint64_t i) {
  const double u1 = unit_double(SplitMix64::at(key, 2 * i));
  const double u2 = unit_double(SplitMix64::at(key, 2 * i + 1));
  return std::sqrt(-2.0 * std::log1p(-u1)) * std::cos(2 * std::numbers::pi * u2);  // 1-u1 in (0, 1]
}

// FNV-1a of the key path: the parameter's own stream, whatever else the model declares.
std::uint64_t key_hash(const std::string& key) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

namespace init {
Initializer zeros() { return {"zeros", constant(0.0).fill}; }
Initializer ones() { return Initializer{"ones", constant(1.0).fill}; }
Initializer constant(double value) {
  return {"constant", [value](std::span<double> out, const Shape&, std::uint64_t) {
            for (double& v : out) v = value;
          }};
}
Initializer normal(double stddev) {
  return {"normal", [stddev](std::span<double> out, const Shape&, std::uint64_t key) {
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = stddev * standard_normal(key, i);
          }};
}
Initializer uniform(double low, double high) {
  return {"uniform", [low, high](std::span<double> out, const Shape&, std::uint64_t key) {
            for (std::size_t i = 0; i < out.size(); ++i)
              out[i] = low + (high - low) * unit_double(SplitMix64::at(key, i));
          }};
}
Initializer lecun_normal() {
  return {"lecun_normal", [](std::span<double> out, const Shape& shape, std::uint64_t key) {
            // jax's truncated normal at ±2 has stddev 0.87962566103423978 of the untruncated one.
            const double stddev = std::sqrt(1.0 / static_cast<double>(fan_in(shape))) / 0.87962566103423978;
            for (std::size_t i = 0; i < out.size(); ++i) {
              double z = 0;
              for (std::uint64_t attempt = 0;; ++attempt) {  // rejection: redraw outside ±2
                z = standard_normal(SplitMix64::at(key, attempt), i);
                if (std::abs(z) <= 2.0) break;
              }
              out[i] = stddev * z;
            }
          }};
}
Initializer he_uniform() {
  return {"he_uniform", [](std::span<double> out, const Shape& shape, std::uint64_t key) {
            const double limit = std::sqrt(6.0 / static_cast<double>(fan_in(shape)));
            for (std::size_t i = 0; i < out.size(); ++i)
              out[i] = (2.0 * unit_double(SplitMix64::at(key, i)) - 1.0) * limit;
          }};
}
}  // namespace init

Module::Module(Module& parent, std::string name) : root_(parent.root_) {
  if (name.empty() || name.find('/') != std::string::npos)
    throw InvalidArgumentError("Module: submodule name \"" + name + "\" must be non-empty and contain no '/'");
  path_ = parent.path_.empty() ? std::move(name) : parent.path_ + "/" + name;
}

Param Module::param(const std::string& name, Shape shape, Initializer init, PartitionSpec sharding) {
  if (name.empty() || name.find('/') != std::string::npos)
    throw InvalidArgumentError("Module::param: name \"" + name + "\" must be non-empty and contain no '/'");
  std::string key = path_.empty() ? name : path_ + "/" + name;
  for (std::int64_t e : shape)
    if (e < 0) throw InvalidArgumentError("Module::param: \"" + key + "\" has a negative extent in " + shape.to_string());
  if (!init.fill) throw InvalidArgumentError("Module::param: \"" + key + "\" has no initializer");
  std::vector<ParamSpec>& specs = root_->specs_;
  for (const ParamSpec& s : specs)
    if (s.key == key) throw InvalidArgumentError("Module::param: \"" + key + "\" is declared twice");
  if (sharding.size() > shape.rank())
    throw InvalidArgumentError("Module::param: \"" + key + "\" of shape " + shape.to_string() + " has sharding " +
                               sharding.to_string() + " with more entries than dimensions");
  specs.push_back({key, std::move(shape), std::move(init), std::move(sharding)});
  return Param(specs.back().key, static_cast<int>(specs.size()) - 1);
}

std::int64_t Module::num_params() const {
  std::int64_t n = 0;
  for (const ParamSpec& s : param_specs()) n += s.shape.numel();
  return n;
}

Tree Module::init(std::uint64_t seed, DType dtype) const {
  if (dtype != DType::f32 && dtype != DType::f64)
    throw DTypeError("Module::init: dtype " + std::string(to_string(dtype)) + "; valid: f32, f64");
  Tree params;
  std::vector<double> values;
  for (const ParamSpec& s : param_specs()) {
    values.assign(static_cast<std::size_t>(s.shape.numel()), 0.0);
    s.init.fill(values, s.shape, SplitMix64::at(seed, key_hash(s.key)));
    Array a = Array::empty(s.shape, dtype);
    if (dtype == DType::f64)
      std::copy(values.begin(), values.end(), a.data<double>().begin());
    else
      for (std::size_t i = 0; i < values.size(); ++i) a.data<float>()[i] = static_cast<float>(values[i]);
    params.set(s.key, std::move(a));
  }
  return params;
}

ShardingRules Module::sharding_rules() const {
  ShardingRules rules;
  for (const ParamSpec& s : param_specs())
    if (!s.sharding.mesh_axes().empty()) rules.add(s.key, s.sharding);
  return rules;
}

void VarTree::set(std::string key, Var v) { vars_.insert_or_assign(std::move(key), v); }

Var VarTree::operator[](std::string_view key) const {
  auto it = vars_.find(key);
  if (it == vars_.end()) datarax::detail::throw_no_key("VarTree", key, keys());
  return it->second;
}

std::vector<std::string> VarTree::keys() const { return datarax::detail::keys_of(vars_); }

}  // namespace datarax::nn
