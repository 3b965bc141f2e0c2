#include "datarax/optim/adam.h"

#include <cmath>
#include <string>

#include "core/target_clones.h"
#include "optim/leaves.h"

namespace datarax::optim {

namespace {

void check_range(const char* field, double value, bool ok, const char* range) {
  if (!ok)
    throw InvalidArgumentError(std::string("adam: ") + field + " = " + detail::number(value) +
                               " is out of range " + range);
}

}  // namespace

Adam::Adam(AdamOptions options) : options_(std::move(options)) {
  const AdamOptions& o = options_;
  check_range("b1", o.b1, o.b1 >= 0 && o.b1 < 1, "[0, 1)");
  check_range("b2", o.b2, o.b2 >= 0 && o.b2 < 1, "[0, 1)");
  check_range("eps", o.eps, o.eps >= 0, "[0, inf)");
  check_range("eps_root", o.eps_root, o.eps_root >= 0, "[0, inf)");
  check_range("weight_decay", o.weight_decay, o.weight_decay >= 0, "[0, inf)");
}

std::string_view Adam::name() const { return options_.weight_decay > 0 ? "adamw" : "adam"; }

Tree Adam::init(const Tree& params) const {
  return detail::zero_state(params, {"mu", "nu"}, "adam.init");
}

namespace {

template <class T>
struct AdamConstants {
  T b1, b2, one_minus_b1, one_minus_b2, inv_bc1, inv_bc2, eps, eps_root, wd, neg_lr;
};

// One element of Adam: advances its moments and returns the step direction, before weight decay
// and the learning rate. Inlined into each loop below (and into each of its target clones).
template <class T>
[[gnu::always_inline]] inline T adam_direction(T gi, T& mu, T& nu, const AdamConstants<T>& c) {
  const T m = c.one_minus_b1 * gi + c.b1 * mu;
  const T v = c.one_minus_b2 * gi * gi + c.b2 * nu;
  mu = m;
  nu = v;
  return (m * c.inv_bc1) / (std::sqrt(v * c.inv_bc2 + c.eps_root) + c.eps);
}

// The element-wise Adam(W) step over one leaf, the updates into g. Separate pointers that do not
// alias (restrict) and no branch in the loop let the compiler vectorize it; target_clones compiles
// it for AVX-512 and AVX2 as well as the baseline, and the loader picks the best the CPU has.
template <class T>
DATARAX_CLONES
void adam_loop(T* __restrict g, T* __restrict mu, T* __restrict nu, const T* __restrict p, std::size_t n,
               AdamConstants<T> c) {
  for (std::size_t i = 0; i < n; ++i) {
    T u = adam_direction(g[i], mu[i], nu[i], c);
    if (p != nullptr) u += c.wd * p[i];  // loop-invariant: the compiler unswitches it
    g[i] = c.neg_lr * u;
  }
}

// The same, and then p += update in the same pass (the update is not stored): what update()
// followed by apply_updates() computes, bit for bit (the library is compiled with
// -ffp-contract=off: no multiply-add is fused into an FMA, here or there).
template <class T>
DATARAX_CLONES
void adam_apply_loop(const T* __restrict g, T* __restrict mu, T* __restrict nu, T* __restrict p, std::size_t n,
                     AdamConstants<T> c, bool decays) {
  for (std::size_t i = 0; i < n; ++i) {
    T u = adam_direction(g[i], mu[i], nu[i], c);
    if (decays) u += c.wd * p[i];  // loop-invariant: the compiler unswitches it
    p[i] += c.neg_lr * u;
  }
}

}  // namespace

void Adam::update(Tree& grads, Tree& state, const Tree& params) const {
  step(grads, state, params, nullptr);
}

void Adam::update_and_apply(Tree& grads, Tree& state, Tree& params) const {
  check_same_keys(grads, params, "adam.update_and_apply (gradients vs parameters)");
  step(grads, state, params, &params);
}

void Adam::step(Tree& grads, Tree& state, const Tree& params, Tree* apply_to) const {
  const std::string_view op = apply_to != nullptr ? "adam.update_and_apply" : "adam.update";
  const AdamOptions& o = options_;
  std::int64_t& count = detail::count_of(state, op);
  const double lr = o.learning_rate(count);
  // Bias corrections for update number t = count + 1, in double.
  const double t = static_cast<double>(count + 1);
  const double bc1 = 1.0 - std::pow(o.b1, t);
  const double bc2 = 1.0 - std::pow(o.b2, t);
  const bool decay = o.weight_decay > 0;
  if (decay) check_same_keys(grads, params, "adamw.update (gradients vs parameters)");

  detail::Walker<Tree> mus(state, "state", "mu", op);
  detail::Walker<Tree> nus(state, "state", "nu", op);
  auto p_it = params.begin();
  auto out_it = apply_to != nullptr ? apply_to->begin() : grads.end();  // (the same iterator type)
  for (auto& entry : grads) {
    // Named, not bound: a lambda may not capture a structured binding before C++20 compilers
    // caught up (clang 14).
    const std::string& key = entry.first;
    Array& g = entry.second;
    const Array* p = nullptr;
    Array* out = nullptr;
    if (apply_to != nullptr) {
      out = &(out_it++)->second;
      detail::check_like(op, "parameter", key, *out, g);
      p = out;
    } else if (decay) {
      p = &(p_it++)->second;
      detail::check_like(op, "parameter", key, *p, g);
    }
    const bool decays = decay && (!o.weight_decay_mask || o.weight_decay_mask(key));
    detail::visit_float(g, op, "gradient", key, [&](auto tag) {
      using T = decltype(tag);
      std::span<T> gv = g.template data<T>();
      std::span<T> mu = mus.next(key, g).template data<T>();
      std::span<T> nu = nus.next(key, g).template data<T>();
      std::span<const T> pv = p ? p->template data<T>() : std::span<const T>();
      // 1 − b in double first (as optax does with Python floats): 1 − 0.999f is off by 1e-5.
      const T b1 = static_cast<T>(o.b1), b2 = static_cast<T>(o.b2);
      const T one_minus_b1 = static_cast<T>(1.0 - o.b1), one_minus_b2 = static_cast<T>(1.0 - o.b2);
      const T inv_bc1 = static_cast<T>(1.0 / bc1), inv_bc2 = static_cast<T>(1.0 / bc2);
      const T eps = static_cast<T>(o.eps), eps_root = static_cast<T>(o.eps_root);
      const T wd = static_cast<T>(o.weight_decay), neg_lr = static_cast<T>(-lr);
      const AdamConstants<T> c{b1, b2, one_minus_b1, one_minus_b2, inv_bc1, inv_bc2, eps, eps_root, wd, neg_lr};
      if (out != nullptr)
        adam_apply_loop<T>(gv.data(), mu.data(), nu.data(), out->template data<T>().data(), gv.size(), c, decays);
      else
        adam_loop<T>(gv.data(), mu.data(), nu.data(), decays ? pv.data() : nullptr, gv.size(), c);
    });
  }
  mus.finish();
  nus.finish();
  ++count;
}

std::unique_ptr<Optimizer> adam(Schedule learning_rate, double b1, double b2, double eps) {
  return std::make_unique<Adam>(
      AdamOptions{.learning_rate = std::move(learning_rate), .b1 = b1, .b2 = b2, .eps = eps});
}

std::unique_ptr<Optimizer> adamw(Schedule learning_rate, double b1, double b2, double eps,
                                 double weight_decay) {
  return std::make_unique<Adam>(AdamOptions{.learning_rate = std::move(learning_rate),
                                            .b1 = b1,
                                            .b2 = b2,
                                            .eps = eps,
                                            .weight_decay = weight_decay});
}

}  // namespace datarax::optim
