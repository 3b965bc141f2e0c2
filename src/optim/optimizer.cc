#include "datarax/optim/optimizer.h"

#include <array>
#include <string>

#include "datarax/optim/adam.h"
#include "datarax/optim/sgd.h"
#include "optim/leaves.h"

namespace datarax::optim {

namespace {
constexpr std::array<std::string_view, 3> kNames{"sgd", "adam", "adamw"};
}  // namespace

UpdateResult Optimizer::update_copy(const Tree& grads, const Tree& state,
                                    const Tree& params) const {
  UpdateResult out{detail::deep_copy(grads), detail::deep_copy(state)};
  update(out.updates, out.state, params);
  return out;
}

void Optimizer::update_and_apply(Tree& grads, Tree& state, Tree& params) const {
  update(grads, state, params);
  apply_updates(params, grads);
}

void apply_updates(Tree& params, const Tree& updates) {
  constexpr std::string_view op = "apply_updates";
  check_same_keys(params, updates, op);
  auto u = updates.begin();
  for (auto& entry : params) {
    const std::string& key = entry.first;
    Array& p = entry.second;  // named: a lambda may not capture a binding (clang 14)
    const Array& d = (u++)->second;
    detail::check_like(op, "the update", key, d, p, "the parameter");
    detail::visit_float(p, op, "parameter", key, [&](auto t) {
      using T = decltype(t);
      std::span<T> pv = p.template data<T>();
      std::span<const T> dv = d.template data<T>();
      for (std::size_t i = 0; i < pv.size(); ++i) pv[i] += dv[i];
    });
  }
}

Tree apply_updates_copy(const Tree& params, const Tree& updates) {
  Tree out = detail::deep_copy(params);
  apply_updates(out, updates);
  return out;
}

std::int64_t step_count(const Tree& state) {
  return detail::checked_count(state, "step_count").item<std::int64_t>();
}

std::span<const std::string_view> optimizer_names() { return kNames; }

std::unique_ptr<Optimizer> make_optimizer(std::string_view name, const OptimizerOptions& o) {
  if (name == "sgd")
    return std::make_unique<Sgd>(
        SgdOptions{.learning_rate = o.learning_rate, .momentum = o.momentum, .nesterov = o.nesterov});
  if (name == "adam" || name == "adamw")
    return std::make_unique<Adam>(AdamOptions{.learning_rate = o.learning_rate,
                                              .b1 = o.b1,
                                              .b2 = o.b2,
                                              .eps = o.eps,
                                              .eps_root = o.eps_root,
                                              .weight_decay = name == "adamw" ? o.weight_decay : 0.0,
                                              .weight_decay_mask = nullptr});
  throw InvalidArgumentError("make_optimizer: unknown optimizer \"" + std::string(name) +
                             "\"; valid: sgd, adam, adamw");
}

namespace detail {

void throw_bad_dtype(std::string_view op, std::string_view what, std::string_view key,
                     DType dtype) {
  throw DTypeError(std::string(op) + ": " + std::string(what) + " \"" + std::string(key) +
                   "\" is " + std::string(to_string(dtype)) + "; optimizers support f32 and f64");
}

void throw_missing(std::string_view op, std::string_view tree, std::string_view prefix,
                   std::string_view key) {
  const std::string full = prefix.empty() ? std::string(key) : std::string(prefix) + "/" +
                                                                   std::string(key);
  throw KeyError(std::string(op) + ": " + std::string(tree) + " has no \"" + full +
                 "\" for the gradient \"" + std::string(key) +
                 "\"; the state must come from init() of parameters with the gradients' keys");
}

void throw_extra(std::string_view op, std::string_view tree, std::string_view full_key) {
  throw KeyError(std::string(op) + ": " + std::string(tree) + " has \"" + std::string(full_key) +
                 "\" but the gradients have no such key");
}

void throw_unlike(std::string_view op, std::string_view what, std::string_view key, const Array& a,
                  const Array& like, std::string_view like_what) {
  throw InvalidArgumentError(std::string(op) + ": " + std::string(what) + " \"" +
                             std::string(key) + "\" is " + std::string(to_string(a.dtype())) +
                             a.shape().to_string() + " but " + std::string(like_what) + " is " +
                             std::string(to_string(like.dtype())) + like.shape().to_string() +
                             "; they must match");
}

const Array& checked_count(const Tree& state, std::string_view op) {
  if (!state.contains("count"))
    throw KeyError(std::string(op) + ": the optimizer state has no \"count\" leaf; make the "
                   "state with the optimizer's init()");
  const Array& c = state.at("count");
  if (c.dtype() != DType::i64 || c.numel() != 1)
    throw InvalidArgumentError(std::string(op) + ": the state's \"count\" is " +
                               std::string(to_string(c.dtype())) + c.shape().to_string() +
                               "; it must be an i64 scalar");
  return c;
}

std::int64_t& count_of(Tree& state, std::string_view op) {
  checked_count(state, op);
  return state.at("count").data<std::int64_t>()[0];
}

Tree deep_copy(const Tree& tree) {
  return tree.map([](const Array& a) { return a.copy(); });
}

Tree zero_state(const Tree& params, std::initializer_list<std::string_view> buffers,
                std::string_view op) {
  Tree state;
  state.set("count", Array::scalar<std::int64_t>(0));
  for (const auto& [key, p] : params) {
    visit_float(p, op, "parameter", key, [](auto) {});
    for (std::string_view b : buffers)
      state.set(std::string(b) + "/" + key, Array::zeros(p.shape(), p.dtype(), p.device()));
  }
  return state;
}

}  // namespace detail

}  // namespace datarax::optim
