// One training step's gradient (value_and_grad: forward, softmax cross-entropy, backward) of the
// built-in CNN (nn/models/cnn.h, 28x28x1 -> 10) at batch 128 in f32 on ONE thread (OpenBLAS set to
// 1 thread, as every device worker runs), against the limit that matters: the step's matrix
// products (conv patches x kernels, dense layers; forward, dkernel and dx) at the sgemm rate of a
// square 512 product timed in the same program. Also times those products at the model's own
// shapes, so that what is left (im2col/col2im, ReLU, pooling, bias, the loss) shows.
//
//   cmake --build build --target bench_cnn_step && ./build/bench/cnn_step [--batch 128] [--reps 11] [--rounds 3]
//
// OpenBLAS picks its kernel from the CPU's model; where it does not know the model (a VM's
// "Intel(R) Xeon(R) Processor") it falls back to Prescott (SSE3), and every product runs several
// times slower. The header names the kernel; set OPENBLAS_CORETYPE (SkylakeX, Cooperlake, Zen) to
// the CPU's.
#include <cblas.h>

#include <time.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"
#include "datarax/nn/blas.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/models/cnn.h"
#include "datarax/nn/ops/cross_entropy.h"
#include "datarax/nn/value_and_grad.h"

namespace bench = datarax::bench;
namespace nn = datarax::nn;
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
  std::printf("# cnn_step: value_and_grad of the CNN (28x28x1, conv 32/64, dense 128, 10 classes), batch %lld, f32, "
              "1 BLAS thread, %s build\n# CPU: %s; OpenBLAS kernel %s (OPENBLAS_CORETYPE %s)\n",
              static_cast<long long>(B), DATARAX_BENCH_BUILD_TYPE, cpu_model().c_str(), openblas_get_corename(),
              std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset");

  const nn::Cnn model;
  const datarax::Tree params = model.init(0);
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
  nn::ValueAndGrad step([&](const nn::VarTree& p, const nn::VarTree& b) {
    return nn::softmax_cross_entropy(model(p, b["image"]), b["label"]);
  });

  // Verify once: a loss near log(10) at initialization, finite gradients of every parameter.
  const auto first = step(params, batch);
  bench::verify(std::isfinite(first.loss) && std::abs(first.loss - std::log(10.0)) < 1.0,
                "the initial loss " + std::to_string(first.loss) + " is near log(10)");
  for (const auto& [key, g] : first.grads) {
    double sq = 0;
    for (float v : g.data<float>()) sq += static_cast<double>(v) * v;
    bench::verify(std::isfinite(sq) && sq > 0, "the gradient of " + key + " is finite and not zero");
  }

  // Rounds of (square sgemm, steps), interleaved: on a shared machine the rate of the cores drifts,
  // and each round's ratio compares its steps with the products timed beside them.
  const Gemm square{"square 512", false, false, 512, 512, 512};
  double flops = 0;
  for (const Gemm& g : step_gemms(B)) flops += g.flops();
  std::vector<double> step_wall, step_cpu, rate_wall, rate_cpu, ratio_wall, ratio_cpu;
  for (int r = 0; r < rounds; ++r) {
    const Timing sq = time_gemm(square, 21);
    const Timing st = timed(1, reps, [&] { bench::do_not_optimize(step(params, batch).loss); });
    step_wall.push_back(st.wall.median());
    step_cpu.push_back(st.cpu.median());
    rate_wall.push_back(square.flops() / sq.wall.median() / 1e3);
    rate_cpu.push_back(square.flops() / sq.cpu.median() / 1e3);
    ratio_wall.push_back(flops / rate_wall.back() / 1e3 / st.wall.median());
    ratio_cpu.push_back(flops / rate_cpu.back() / 1e3 / st.cpu.median());
    std::printf("round %d: step %.2f ms wall (p10 %.2f, p90 %.2f), %.2f ms CPU; sgemm 512^3 %.1f GFLOP/s wall, %.1f CPU; "
                "ratio %.2f wall, %.2f CPU\n",
                r + 1, st.wall.median() / 1e3, st.wall.percentile(10) / 1e3, st.wall.percentile(90) / 1e3,
                st.cpu.median() / 1e3, rate_wall.back(), rate_cpu.back(), ratio_wall.back(), ratio_cpu.back());
  }
  const auto median = [](std::vector<double> v) { return bench::Samples(std::move(v)).median(); };

  double at_shapes_us = 0;
  std::printf("\nproduct | M x N x K | GFLOP | ms (CPU) | GFLOP/s\n---|---|---|---|---\n");
  for (const Gemm& g : step_gemms(B)) {
    const double us = time_gemm(g, 5).cpu.median();
    at_shapes_us += us;
    std::printf("%s | %lld x %lld x %lld | %.3f | %.2f | %.1f\n", g.what, static_cast<long long>(g.M),
                static_cast<long long>(g.N), static_cast<long long>(g.K), g.flops() / 1e9, us / 1e3,
                g.flops() / us / 1e3);
  }
  const double wall_ms = median(step_wall) / 1e3, cpu_ms = median(step_cpu) / 1e3;
  std::printf("\nmedians of %d rounds (%d steps each):\n", rounds, reps);
  std::printf("step %.2f ms wall (%.0f samples/s), %.2f ms CPU (%.0f samples/s)\n", wall_ms,
              static_cast<double>(B) / wall_ms * 1e3, cpu_ms, static_cast<double>(B) / cpu_ms * 1e3);
  std::printf("sgemm 512^3 (1 thread) %.1f GFLOP/s wall, %.1f CPU; GEMM FLOP per step %.3f G: bound %.2f ms (CPU rate)\n",
              median(rate_wall), median(rate_cpu), flops / 1e9, flops / median(rate_cpu) / 1e6);
  std::printf("GEMM-bound ratio %.2f wall, %.2f CPU (medians of the rounds' ratios)\n", median(ratio_wall),
              median(ratio_cpu));
  std::printf("the step's products timed alone at the model's shapes: %.2f ms CPU, %.0f%% of the step's CPU time\n",
              at_shapes_us / 1e3, at_shapes_us / 1e3 / cpu_ms * 100);
  return 0;
}
