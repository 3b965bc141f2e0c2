// The default MLP (784-512-512-10, ReLU, softmax cross-entropy, batch 128 per device) two ways,
// one device, f32: the hand-written nn::Mlp step (forward and backward by hand, llm.c style) and
// the same model written as a Module whose gradient comes from nn::ValueAndGrad (recorded once,
// replayed). Interleaved in rounds; medians of each; the ratio is the cost of automatic gradients
// on this model. Verifies first that both give the same loss and gradients (within f32 rounding).
//
//   ./build/bench/autodiff_mlp [--rounds 5] [--steps 50]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bench_util.h"
#include "datarax/datarax.h"

namespace {

using namespace datarax;
using namespace datarax::nn;

struct MlpModule : Module {
  Dense d0{*this, "dense_0", 784, 512, {.kernel_init = init::he_uniform()}};
  Dense d1{*this, "dense_1", 512, 512, {.kernel_init = init::he_uniform()}};
  Dense d2{*this, "dense_2", 512, 10, {.kernel_init = init::he_uniform()}};
  Var operator()(const VarTree& p, Var x) const { return d2(p, relu(d1(p, relu(d0(p, x))))); }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "usage: autodiff_mlp [--rounds N] [--steps N]";
  bench::reject_unknown_flags(argc, argv, {"--rounds", "--steps"}, usage);
  const int rounds = static_cast<int>(bench::int_flag(argc, argv, "--rounds", 5, 1, usage));
  const int steps = static_cast<int>(bench::int_flag(argc, argv, "--steps", 50, 1, usage));
  const std::int64_t B = 128;
  use_single_threaded_blas_by_default();
  std::printf("# autodiff_mlp: MLP 784-512-512-10, batch %lld, f32, 1 thread, %d rounds of %d steps (%s build)\n",
              static_cast<long long>(B), rounds, steps, DATARAX_BENCH_BUILD_TYPE);
  std::printf("# f32 matrix products: %s\n", matmul_kernel_choice(Precision::f32).reason.c_str());

  MlpModule model;
  const Tree params = model.init(1);
  Array x = Array::empty({B, 784});
  Array labels = Array::empty({B}, DType::i32);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>((i * 7919) % 255) / 255.0F;
  for (std::int64_t i = 0; i < B; ++i) labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % 10);
  const Array mask = Array::full({B}, 1.0);
  const Tree batch{{"x", x}, {"labels", labels}};

  ValueAndGrad vg([&](const VarTree& p, const VarTree& b) { return softmax_cross_entropy(model(p, b["x"]), b["labels"]); });
  Mlp hand({.sizes = {784, 512, 512, 10}}, B);
  Tree hand_grads;

  // Verify: the same loss and gradients.
  const auto [loss, grads] = vg(params, batch);
  const double hand_loss = hand.loss_and_grad(params, x, labels, mask, static_cast<double>(B), hand_grads);
  double worst = 0;
  for (const auto& [key, g] : grads)
    for (std::int64_t i = 0; i < g.numel(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(g.data<float>()[i] - hand_grads.at(key).data<float>()[i])));
  std::printf("# verify: loss %.7f (hand %.7f), largest gradient difference %.2e\n", loss, hand_loss, worst);
  bench::verify(std::abs(loss - hand_loss) < 1e-5 && worst < 1e-5, "the two steps agree");

  std::vector<double> t_auto, t_hand;
  for (int r = 0; r < rounds; ++r) {
    for (int which = 0; which < 2; ++which) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int s = 0; s < steps; ++s) {
        if (which == 0)
          bench::do_not_optimize(vg(params, batch).loss);
        else
          bench::do_not_optimize(hand.loss_and_grad(params, x, labels, mask, static_cast<double>(B), hand_grads));
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / steps;
      (which == 0 ? t_auto : t_hand).push_back(ms);
    }
  }
  const double a = median(t_auto), h = median(t_hand);
  std::printf("step | ms (median of %d rounds) | min | max\n---|---|---|---\n", rounds);
  std::printf("value_and_grad (Module) | %.3f | %.3f | %.3f\n", a, *std::min_element(t_auto.begin(), t_auto.end()),
              *std::max_element(t_auto.begin(), t_auto.end()));
  std::printf("hand-written nn::Mlp | %.3f | %.3f | %.3f\n", h, *std::min_element(t_hand.begin(), t_hand.end()),
              *std::max_element(t_hand.begin(), t_hand.end()));
  std::printf("hand-written / value_and_grad speed: %.3f\n", h / a);
  return 0;
}
