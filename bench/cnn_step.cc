// One training step of the built-in CNN (nn/models/cnn.h, 28x28x1 -> 10) in f32 on ONE thread, as
// one device of the trainer runs it: value_and_grad (forward, softmax cross-entropy, backward) and
// Adam's update of the parameters, at a per-device batch of 128 (global 256 on 2 devices) or 256
// (1 device). Against the limit that matters, the step's GEMM bound: the time its matrix products
// would take at the rate the chosen kernel (matmul_kernel.h) reaches on those very shapes — each
// conv as im2col products over the whole batch (forward, dkernel, dx; conv_0's dx is not needed:
// the images are data) and the dense layers' three products — timed in the same round as the steps.
// Prints the step's time (wall and this thread's CPU time), the products' FLOP, the bound, the
// ratio, the products one by one, the allocations per step after warm-up (0 expected), and where
// the step's time goes op by op (Graph::time_ops).
//
//   cmake --build build --target bench_cnn_step && ./build/bench/cnn_step [--batch 128] [--reps 11] [--rounds 3]
//
// OpenBLAS picks its kernel from the CPU's model; where it does not know the model (a VM's
// "Intel(R) Xeon(R) Processor") it falls back to Prescott (SSE3); the header names it and the f32
// kernel the products run on.
#include <cblas.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"
#include "malloc_count.h"
#include "datarax/nn/blas.h"
#include "datarax/nn/matmul_kernel.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/models/cnn.h"
#include "datarax/nn/ops/cross_entropy.h"
#include "datarax/nn/value_and_grad.h"
#include "datarax/optim/adam.h"

namespace bench = datarax::bench;
namespace nn = datarax::nn;
namespace optim = datarax::optim;
using datarax::Array;
using datarax::Shape;

namespace {

struct Gemm {
  const char* what;
  bool ta, tb;
  std::int64_t M, N, K;
  double flops() const { return 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K); }
};

// The products of one step, as the ops issue them (one per layer and direction; conv2d splits its
// rows into chunks, which these single products stand for).
std::vector<Gemm> step_gemms(std::int64_t B) {
  const std::int64_t r0 = B * 28 * 28, r1 = B * 14 * 14;
  return {
      {"conv_0 forward", false, false, r0, 32, 9},   {"conv_0 dkernel", true, false, 9, 32, r0},
      {"conv_1 forward", false, false, r1, 64, 288}, {"conv_1 dkernel", true, false, 288, 64, r1},
      {"conv_1 dx", false, true, r1, 288, 64},       {"dense_0 forward", false, false, B, 128, 3136},
      {"dense_0 dkernel", true, false, 3136, 128, B}, {"dense_0 dx", false, true, B, 3136, 128},
      {"dense_1 forward", false, false, B, 10, 128}, {"dense_1 dkernel", true, false, 128, 10, B},
      {"dense_1 dx", false, true, B, 128, 10},
  };  // conv_0's dx is not needed: the images are data
}

// Microseconds per call, by the wall clock and by this thread's CPU clock. On a shared machine
// (other processes on the same cores) the wall clock also counts the time the thread waited for a
// core; its CPU time does not, and with OpenBLAS on 1 thread every product runs on this thread.
struct Timing {
  bench::Samples wall, cpu;
};

double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

template <class Fn>
Timing timed(int warmup, int reps, Fn&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> wall, cpu;
  for (int i = 0; i < reps; ++i) {
    const double c0 = thread_cpu_us();
    wall.push_back(bench::time_us(fn));
    cpu.push_back(thread_cpu_us() - c0);
  }
  return {bench::Samples(std::move(wall)), bench::Samples(std::move(cpu))};
}

// One product of that shape (operands of constant values), timed.
Timing time_gemm(const Gemm& g, int reps) {
  const std::int64_t rows_a = g.ta ? g.K : g.M, cols_a = g.ta ? g.M : g.K;
  const std::int64_t rows_b = g.tb ? g.N : g.K, cols_b = g.tb ? g.K : g.N;
  std::vector<float> a(static_cast<std::size_t>(rows_a * cols_a), 0.5f), b(static_cast<std::size_t>(rows_b * cols_b), 0.25f),
      c(static_cast<std::size_t>(g.M * g.N));
  return timed(2, reps, [&] {
    nn::matmul(g.ta, g.tb, g.M, g.N, g.K, 1.0f, a.data(), cols_a, b.data(), cols_b, 0.0f, c.data(), g.N);
  });
}

std::string cpu_model() {
  std::FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (!f) return "unknown";
  char line[512];
  std::string model = "unknown";
  while (std::fgets(line, sizeof line, f)) {
    std::string s(line);
    if (s.rfind("model name", 0) == 0) {
      model = s.substr(s.find(':') + 2);
      if (!model.empty() && model.back() == '\n') model.pop_back();
      break;
    }
  }
  std::fclose(f);
  return model;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "cnn_step [--batch N] [--reps N] [--rounds N]";
  bench::reject_unknown_flags(argc, argv, {"--batch", "--reps", "--rounds"}, usage);
  const std::int64_t B = bench::int_flag(argc, argv, "--batch", 128, 1, usage);
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 11, 1, usage));
  const int rounds = static_cast<int>(bench::int_flag(argc, argv, "--rounds", 3, 1, usage));
  nn::set_blas_num_threads(1);
  const std::vector<Gemm> gemms = step_gemms(B);
  // The kernel chosen on the step's own shapes, as the trainer chooses with its model's.
  std::vector<nn::MatmulShape> shapes;
  for (const Gemm& g : gemms) shapes.push_back({.trans_a = g.ta, .trans_b = g.tb, .M = g.M, .N = g.N, .K = g.K});
  const std::string kernel(nn::to_string(nn::choose_matmul_kernel(nn::Precision::f32, shapes).kernel));
  std::printf("# cnn_step: the CNN's training step (28x28x1, conv 32/64, dense 128, 10 classes; value_and_grad + Adam), "
              "batch %lld, f32, 1 thread, %s build\n# CPU: %s; f32 matmul kernel: %s; OpenBLAS kernel %s "
              "(OPENBLAS_CORETYPE %s)\n",
              static_cast<long long>(B), DATARAX_BENCH_BUILD_TYPE, cpu_model().c_str(),
              kernel.c_str(), openblas_get_corename(),
              std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset");

  const nn::Cnn model;
  datarax::Tree params = model.init(0);
  datarax::Tree batch;
  {
    std::vector<float> pixels(static_cast<std::size_t>(B * 28 * 28));
    std::uint64_t s = 1;
    for (float& v : pixels) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = static_cast<float>(s >> 40) / static_cast<float>(1 << 24);  // [0, 1), as pixels / 255
    }
    std::vector<std::int32_t> labels(static_cast<std::size_t>(B));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 10);
    batch.set("image", Array::from_values(Shape{B, 28, 28, 1}, std::move(pixels)));
    batch.set("label", Array::from_values(Shape{B}, std::move(labels)));
  }
  nn::ValueAndGrad grad_fn([&](const nn::VarTree& p, const nn::VarTree& b) {
    return nn::softmax_cross_entropy(model(p, b["image"]), b["label"]);
  });
  // Adam's update as the trainer's step makes it (lr 1e-4: the parameters move little over the run).
  const optim::Adam adam({.learning_rate = 1e-4});
  datarax::Tree state = adam.init(params);

  // Verify once: a loss near log(10) at initialization, finite gradients of every parameter.
  const auto first = grad_fn(params, batch);
  bench::verify(std::isfinite(first.loss) && std::abs(first.loss - std::log(10.0)) < 1.0,
                "the initial loss " + std::to_string(first.loss) + " is near log(10)");
  for (const auto& [key, g] : first.grads) {
    double sq = 0;
    for (float v : g.data<float>()) sq += static_cast<double>(v) * v;
    bench::verify(std::isfinite(sq) && sq > 0, "the gradient of " + key + " is finite and not zero");
  }
  // The gradient Tree shares grad_fn's buffers, which every call overwrites: one copy of the handles.
  datarax::Tree grads = first.grads;
  const auto step = [&] {
    bench::do_not_optimize(grad_fn(params, batch).loss);
    adam.update_and_apply(grads, state, params);
  };
  step();
  const long long allocs0 = bench::allocations();
  for (int i = 0; i < 3; ++i) step();
  const double allocs_per_step = static_cast<double>(bench::allocations() - allocs0) / 3;

  // Rounds of (the products at the step's shapes, steps), interleaved: on a shared machine the rate
  // of the cores drifts, and each round's ratio compares its steps with the products timed beside them.
  double flops = 0;
  for (const Gemm& g : gemms) flops += g.flops();
  std::vector<double> step_wall, step_cpu, bound_wall, bound_cpu, ratio_wall, ratio_cpu;
  std::vector<std::vector<double>> gemm_cpu(gemms.size());
  for (int r = 0; r < rounds; ++r) {
    double bw = 0, bc = 0;
    for (std::size_t i = 0; i < gemms.size(); ++i) {
      const Timing t = time_gemm(gemms[i], 5);
      bw += t.wall.median();
      bc += t.cpu.median();
      gemm_cpu[i].push_back(t.cpu.median());
    }
    const Timing st = timed(1, reps, step);
    step_wall.push_back(st.wall.median());
    step_cpu.push_back(st.cpu.median());
    bound_wall.push_back(bw);
    bound_cpu.push_back(bc);
    ratio_wall.push_back(bw / st.wall.median());
    ratio_cpu.push_back(bc / st.cpu.median());
    std::printf("round %d: step %.2f ms wall (p10 %.2f, p90 %.2f), %.2f ms CPU; GEMM bound %.2f ms wall, %.2f CPU; "
                "ratio %.2f wall, %.2f CPU\n",
                r + 1, st.wall.median() / 1e3, st.wall.percentile(10) / 1e3, st.wall.percentile(90) / 1e3,
                st.cpu.median() / 1e3, bw / 1e3, bc / 1e3, ratio_wall.back(), ratio_cpu.back());
  }
  const auto median = [](std::vector<double> v) { return bench::Samples(std::move(v)).median(); };

  std::printf("\nproduct | M x N x K | GFLOP | ms (CPU) | GFLOP/s\n---|---|---|---|---\n");
  for (std::size_t i = 0; i < gemms.size(); ++i) {
    const Gemm& g = gemms[i];
    const double us = median(gemm_cpu[i]);
    std::printf("%s | %lld x %lld x %lld | %.3f | %.2f | %.1f\n", g.what, static_cast<long long>(g.M),
                static_cast<long long>(g.N), static_cast<long long>(g.K), g.flops() / 1e9, us / 1e3,
                g.flops() / us / 1e3);
  }

  // Where the time goes: each op's forward and backward (CPU time), over `reps` more steps.
  nn::Graph& graph = *grad_fn.graph();
  graph.time_ops(true);
  std::vector<double> phase_cpu;
  for (int i = 0; i < reps; ++i) {
    const double c0 = thread_cpu_us();
    step();
    phase_cpu.push_back(thread_cpu_us() - c0);
  }
  graph.time_ops(false);
  const double phase_ms = std::accumulate(phase_cpu.begin(), phase_cpu.end(), 0.0) / reps / 1e3;
  std::printf("\nphase (op, node) | forward ms | backward ms | share of the step (CPU %.2f ms)\n---|---|---|---\n",
              phase_ms);
  double ops_ms = 0;
  for (const nn::Graph::OpTime& t : graph.op_times()) {
    const double f = t.forward_s * 1e3 / reps, b = t.backward_s * 1e3 / reps;
    ops_ms += f + b;
    if (f + b < 0.005 * phase_ms) continue;  // below half a percent
    std::printf("%s (node %d) | %.2f | %.2f | %.1f%%\n", std::string(t.op).c_str(), t.id, f, b, (f + b) / phase_ms * 100);
  }
  std::printf("the rest (ops under 0.5%% above, gradient seeding, Adam) | | | %.1f%%\n",
              (phase_ms - ops_ms) / phase_ms * 100 + 0.0);

  const double wall_ms = median(step_wall) / 1e3, cpu_ms = median(step_cpu) / 1e3;
  std::printf("\nmedians of %d rounds (%d steps each), batch %lld, 1 thread, %s:\n", rounds, reps,
              static_cast<long long>(B), cpu_model().c_str());
  std::printf("step %.2f ms wall (%.0f samples/s), %.2f ms CPU (%.0f samples/s)\n", wall_ms,
              static_cast<double>(B) / wall_ms * 1e3, cpu_ms, static_cast<double>(B) / cpu_ms * 1e3);
  std::printf("GEMM FLOP per step %.3f G; GEMM bound (the products at the step's shapes, kernel %s) %.2f ms wall, "
              "%.2f ms CPU (%.1f GFLOP/s)\n",
              flops / 1e9, kernel.c_str(),
              median(bound_wall) / 1e3, median(bound_cpu) / 1e3, flops / median(bound_cpu) / 1e3);
  std::printf("GEMM-bound ratio %.2f wall, %.2f CPU (medians of the rounds' ratios)\n", median(ratio_wall),
              median(ratio_cpu));
  std::printf("allocations per step after warm-up: %.0f\n", allocs_per_step);
  return 0;
}
