// causal_attention forward + backward at the baby GPT's size, against a square sgemm timed in
// the same program (the same nn::matmul, one thread): how close the tiled op runs to the
// machine's matrix-product rate.
//
//   cmake --build build --target bench_attention && ./build/bench/attention [--B 8 --H 6 --T 256 --D 64]
//
// FLOPs counted are the causal ones a perfect kernel needs: forward 2 products of B·H·T²/2·D
// multiply-adds (Q Kᵀ, P V), backward 5 (recomputed Q Kᵀ, dV, dP, dQ, dK): 7 · B·H·T²·D FLOP in
// all (×2 for multiply-add, ÷2 for causality). The tiled op also computes the masked half of each
// diagonal tile and the exps, which are not counted.
#include <time.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "bench_util.h"
#include "datarax/nn/blas.h"
#include "datarax/nn/graph.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/ops/attention.h"
#include "datarax/nn/ops/reduce.h"

extern "C" char* openblas_get_corename(void);

namespace {

using datarax::Array;
using datarax::DType;
using datarax::Shape;
namespace bench = datarax::bench;
namespace nn = datarax::nn;

Array random(Shape shape, std::uint64_t seed) {
  Array a = Array::empty(std::move(shape), DType::f32);
  std::uint64_t s = seed * 2654435761u + 1;
  for (float& v : a.data<float>()) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<double>(s >> 11) * 0x1.0p-53 * 2 - 1);
  }
  return a;
}

// out[b, t, h, :] by the untiled formula in double, for one (b, t, h).
std::vector<double> naive_row(const Array& q, const Array& k, const Array& v, long b, long t, long h, long T, long H,
                              long D) {
  auto at = [&](long bb, long tt, long hh) { return ((bb * T + tt) * H + hh) * D; };
  std::vector<double> p(static_cast<std::size_t>(t + 1)), out(static_cast<std::size_t>(D), 0.0);
  double mx = -INFINITY, total = 0;
  for (long s = 0; s <= t; ++s) {
    double dot = 0;
    for (long d = 0; d < D; ++d) dot += double(q.data<float>()[at(b, t, h) + d]) * k.data<float>()[at(b, s, h) + d];
    p[s] = dot / std::sqrt(double(D));
    mx = std::max(mx, p[s]);
  }
  for (double& x : p) total += x = std::exp(x - mx);
  for (long s = 0; s <= t; ++s)
    for (long d = 0; d < D; ++d) out[d] += p[s] / total * v.data<float>()[at(b, s, h) + d];
  return out;
}

struct Timing {
  bench::Samples wall, cpu;  // microseconds
};

double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

template <class Fn>
Timing measure(int warmup, int reps, Fn&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> wall, cpu;
  for (int i = 0; i < reps; ++i) {
    const double c = thread_cpu_us();
    wall.push_back(bench::time_us(fn));
    cpu.push_back(thread_cpu_us() - c);
  }
  return {bench::Samples(std::move(wall)), bench::Samples(std::move(cpu))};
}

}  // namespace

int main(int argc, char** argv) {
  constexpr std::string_view usage = "attention [--B 8] [--H 6] [--T 256] [--D 64] [--reps 11] [--gemm 1024]";
  bench::reject_unknown_flags(argc, argv, {"--B", "--H", "--T", "--D", "--reps", "--gemm"}, usage);
  const long B = bench::int_flag(argc, argv, "--B", 8, 1, usage), H = bench::int_flag(argc, argv, "--H", 6, 1, usage),
             T = bench::int_flag(argc, argv, "--T", 256, 1, usage), D = bench::int_flag(argc, argv, "--D", 64, 1, usage);
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 11, 1, usage));
  const long n = bench::int_flag(argc, argv, "--gemm", 1024, 1, usage);
  nn::set_blas_num_threads(1);
  std::printf("# causal_attention f32, [B, T, H, D] = [%ld, %ld, %ld, %ld], 1 thread (build %s); OpenBLAS kernel %s\n", B,
              T, H, D, DATARAX_BENCH_BUILD_TYPE, openblas_get_corename());
  std::printf("# %d timed reps after 2 warm-up calls; GFLOP/s of causal work: 7 B H T^2 D forward+backward, 2 B H T^2 D forward\n",
              reps);

  nn::Graph g;
  const Shape s{B, T, H, D};
  const Array q = random(s, 1), k = random(s, 2), v = random(s, 3);
  nn::Var y = nn::causal_attention(g.parameter("q", q), g.parameter("k", k), g.parameter("v", v));
  nn::Var loss = nn::sum(y);
  g.finish();
  // Verify a few rows against the untiled formula before timing.
  for (long t : {0L, T / 2, T - 1}) {
    const auto want = naive_row(q, k, v, B - 1, t, H - 1, T, H, D);
    const float* got = y.value().data<float>().data() + ((B - 1) * T + t) * H * D + (H - 1) * D;
    for (long d = 0; d < D; ++d)
      bench::verify(std::abs(got[d] - want[d]) < 1e-4, "causal_attention row " + std::to_string(t) + " matches");
  }

  // Each sample is timed twice: wall clock (what a user waits) and this thread's CPU time (what
  // the op costs when other processes share the cores: one thread, OpenBLAS on it, so the CPU
  // time is all its work). The loss (a sum) is timed alone on a graph of its own and its medians
  // taken off the op's.
  nn::Graph base;
  nn::Var base_loss = nn::sum(base.parameter("y", random(s, 4)));
  base.finish();
  auto timed = [&](auto&& fn) { return measure(2, reps, fn); };
  auto graph_fn = [](nn::Graph& graph, nn::Var l, bool backward) {
    return [&graph, l, backward] {
      graph.forward();
      if (backward) graph.backward(l);
    };
  };
  const Timing fwd = timed(graph_fn(g, loss, false)), fwd_base = timed(graph_fn(base, base_loss, false));
  const Timing both = timed(graph_fn(g, loss, true)), both_base = timed(graph_fn(base, base_loss, true));
  const double flop_fwd = 2.0 * B * H * T * T * D, flop_all = 7.0 * B * H * T * T * D;

  std::vector<float> a(static_cast<std::size_t>(n * n)), b(a.size()), c(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = b[i] = static_cast<float>(i % 7) * 0.1f;
  const Timing mm = timed([&] { nn::matmul(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); });
  // 64-row tiles: the shape the op's products actually have (100 per sample).
  std::vector<float> ta(64 * 64), tb(ta.size()), tc(ta.size());
  const Timing tile = timed([&] {
    for (int i = 0; i < 100; ++i) nn::matmul(false, true, 64, 64, 64, 1.0f, ta.data(), 64, tb.data(), 64, 0.0f, tc.data(), 64);
  });

  std::printf("%-28s %9s %9s %9s %9s | %9s %9s\n", "", "wall_ms", "p10", "p90", "GFLOP/s", "cpu_ms", "GFLOP/s");
  auto row = [](const std::string& name, const Timing& x, const Timing* base_t, double flop) {
    const double w0 = base_t ? base_t->wall.median() : 0, c0 = base_t ? base_t->cpu.median() : 0;
    const double w = x.wall.median() - w0, cpu = x.cpu.median() - c0;
    std::printf("%-28s %9.2f %9.2f %9.2f %9.1f | %9.2f %9.1f\n", name.c_str(), w / 1e3, (x.wall.percentile(10) - w0) / 1e3,
                (x.wall.percentile(90) - w0) / 1e3, flop / w / 1e3, cpu / 1e3, flop / cpu / 1e3);
    return flop / cpu / 1e3;
  };
  row("attention forward", fwd, &fwd_base, flop_fwd);
  const double att = row("attention forward+backward", both, &both_base, flop_all);
  row("  (the loss alone, taken off)", both_base, nullptr, 0);
  const double gemm = row("sgemm " + std::to_string(n) + "^3", mm, nullptr, 2.0 * n * n * n);
  const double small = row("sgemm 64^3 (A Bt) x100", tile, nullptr, 100 * 2.0 * 64 * 64 * 64);
  std::printf("# by CPU time, forward+backward runs at %.0f%% of the square sgemm's rate, %.0f%% of a 64^3 tile's\n",
              100 * att / gemm, 100 * att / small);
  return 0;
}
