#include "datarax/optim/sgd.h"

#include <string>

#include "optim/leaves.h"

namespace datarax::optim {

Sgd::Sgd(SgdOptions options) : options_(std::move(options)) {
  if (!(options_.momentum >= 0))
    throw InvalidArgumentError("sgd: momentum = " + detail::number(options_.momentum) +
                               " must be >= 0 (0: no momentum)");
  if (options_.nesterov && options_.momentum == 0)
    throw InvalidArgumentError("sgd: nesterov needs momentum > 0; momentum is 0");
}

Tree Sgd::init(const Tree& params) const {
  if (options_.momentum == 0) return detail::zero_state(params, {}, "sgd.init");
  return detail::zero_state(params, {"trace"}, "sgd.init");
}

void Sgd::update(Tree& grads, Tree& state, const Tree& /*params*/) const {
  constexpr std::string_view op = "sgd.update";
  std::int64_t& count = detail::count_of(state, op);
  const double lr = options_.learning_rate(count);
  const bool momentum = options_.momentum != 0;
  detail::Walker<Tree> traces(state, "state", "trace", op);
  for (auto& entry : grads) {
    const std::string& key = entry.first;
    Array& g = entry.second;  // named: a lambda may not capture a binding (clang 14)
    detail::visit_float(g, op, "gradient", key, [&](auto t) {
      using T = decltype(t);
      std::span<T> gv = g.template data<T>();
      const T neg_lr = static_cast<T>(-lr);
      if (!momentum) {
        for (T& v : gv) v *= neg_lr;
        return;
      }
      const T m = static_cast<T>(options_.momentum);
      std::span<T> tv = traces.next(key, g).template data<T>();
      for (std::size_t i = 0; i < gv.size(); ++i) {
        tv[i] = gv[i] + m * tv[i];
        const T u = options_.nesterov ? gv[i] + m * tv[i] : tv[i];
        gv[i] = neg_lr * u;
      }
    });
  }
  if (momentum) traces.finish();
  ++count;
}

std::unique_ptr<Optimizer> sgd(Schedule learning_rate, double momentum, bool nesterov) {
  return std::make_unique<Sgd>(SgdOptions{
      .learning_rate = std::move(learning_rate), .momentum = momentum, .nesterov = nesterov});
}

}  // namespace datarax::optim
