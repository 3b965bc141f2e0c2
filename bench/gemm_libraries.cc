// Which matrix-product library for the trainer's step: OpenBLAS sgemm (what nn/ calls in f32)
// against oneDNN's matmul in f32 and in bf16, and datarax's own bf16 product (bf16 inputs, f32 accumulation and output: the
// mixed-precision recipe), on the exact GEMMs one device makes in a training step of the default
// model (MLP 784-512-512-10; forward, then dW = inpᵀ·dout and dinp = dout·Wᵀ), one thread per
// device, with 1 device (batch 256) and with 2 devices running at once (batch 128 each: data
// parallelism on this 2-core machine).
//
//   apt-get install libdnnl-dev   # oneDNN; without it this benchmark is not built
//   cmake --build build --target bench_gemm_libraries
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/bench/gemm_libraries [--rounds 5]
//
// The libraries run interleaved, round after round (this machine's speed drifts over minutes);
// each figure is the median over rounds of a round's median of 21 repetitions of the whole set of
// GEMMs, taken on the slowest of the concurrent threads. Every library's output is checked once
// against the exact value (inputs 0.5 and 0.25, exact in bf16 too: each element is K / 8). The
// oneDNN bf16 figures leave out the conversions to bf16 that a step would add (one pass over the
// activations and the weights each); datarax's bf16 product (nn::matmul under a bf16
// MatmulPrecisionScope, where the CPU has AVX512_BF16) takes the f32 operands and includes them. "allocations per step" counts every malloc, posix_memalign and
// aligned_alloc of the process during the timed repetitions (this program interposes them), per set
// of GEMMs: the trainer allocates nothing per step, and a library that does would break that.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "datarax/nn/matmul.h"
#include "datarax/nn/precision.h"
#include "gemm_shapes.h"
#include "malloc_count.h"

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);

namespace {

namespace bench = datarax::bench;
using bench::Gemm;

enum class Lib { openblas_f32, onednn_sgemm, onednn_f32, onednn_bf16, datarax_bf16 };
const char* name(Lib l) {
  switch (l) {
    case Lib::openblas_f32: return "OpenBLAS sgemm f32";
    case Lib::onednn_sgemm: return "oneDNN dnnl_sgemm f32 (the BLAS-like call)";
    case Lib::onednn_f32: return "oneDNN matmul f32";
    case Lib::onednn_bf16: return "oneDNN matmul bf16 (f32 accumulate)";
    case Lib::datarax_bf16: return "datarax nn::matmul bf16 (f32 in, converted while packing)";
  }
  return "?";
}

// One thread's buffers and callable for a set of GEMMs in one library.
class Runner {
 public:
  Runner(Lib lib, const std::vector<Gemm>& gemms) : lib_(lib), gemms_(gemms) {
    const bool bf16 = lib == Lib::onednn_bf16;
    for (const Gemm& g : gemms) {
      const std::size_t a = static_cast<std::size_t>(g.M) * g.K, b = static_cast<std::size_t>(g.K) * g.N;
      if (bf16) {
        a16_.emplace_back(a, std::uint16_t{0x3F00});  // 0.5
        b16_.emplace_back(b, std::uint16_t{0x3E80});  // 0.25
      } else {
        a32_.emplace_back(a, 0.5f);
        b32_.emplace_back(b, 0.25f);
      }
      c_.emplace_back(static_cast<std::size_t>(g.M) * g.N, 0.0f);
    }
    if (lib == Lib::openblas_f32 || lib == Lib::onednn_sgemm || lib == Lib::datarax_bf16) return;
    using dnnl::memory;
    const auto dt = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    for (std::size_t i = 0; i < gemms.size(); ++i) {
      const Gemm& g = gemms[i];
      // Row-major A [M, K] (stored [K, M] when transposed) and B [K, N] (stored [N, K]).
      const memory::desc a_md({g.M, g.K}, dt, g.ta ? memory::dims{1, g.M} : memory::dims{g.K, 1});
      const memory::desc b_md({g.K, g.N}, dt, g.tb ? memory::dims{1, g.K} : memory::dims{g.N, 1});
      const memory::desc c_md({g.M, g.N}, memory::data_type::f32, memory::dims{g.N, 1});
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), engine_);
      prims_.emplace_back(pd);
      void* a = bf16 ? static_cast<void*>(a16_[i].data()) : static_cast<void*>(a32_[i].data());
      void* b = bf16 ? static_cast<void*>(b16_[i].data()) : static_cast<void*>(b32_[i].data());
      args_.push_back({{DNNL_ARG_SRC, memory(a_md, engine_, a)},
                       {DNNL_ARG_WEIGHTS, memory(b_md, engine_, b)},
                       {DNNL_ARG_DST, memory(c_md, engine_, c_[i].data())}});
    }
  }

  void run() {
    if (lib_ == Lib::openblas_f32) {
      for (std::size_t i = 0; i < gemms_.size(); ++i) {
        const Gemm& g = gemms_[i];
        cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans, g.M, g.N, g.K,
                    1.0f, a32_[i].data(), g.ta ? g.M : g.K, b32_[i].data(), g.tb ? g.K : g.N, 0.0f, c_[i].data(), g.N);
      }
      return;
    }
    if (lib_ == Lib::datarax_bf16) {  // the trainer's call, under the thread's bf16 scope (time_us)
      for (std::size_t i = 0; i < gemms_.size(); ++i) {
        const Gemm& g = gemms_[i];
        datarax::nn::matmul(g.ta, g.tb, g.M, g.N, g.K, 1.0f, a32_[i].data(), g.ta ? g.M : g.K, b32_[i].data(),
                            g.tb ? g.K : g.N, 0.0f, c_[i].data(), g.N);
      }
      return;
    }
    if (lib_ == Lib::onednn_sgemm) {
      for (std::size_t i = 0; i < gemms_.size(); ++i) {
        const Gemm& g = gemms_[i];
        dnnl_sgemm(g.ta ? 'T' : 'N', g.tb ? 'T' : 'N', g.M, g.N, g.K, 1.0f, a32_[i].data(), g.ta ? g.M : g.K,
                   b32_[i].data(), g.tb ? g.K : g.N, 0.0f, c_[i].data(), g.N);
      }
      return;
    }
    for (std::size_t i = 0; i < prims_.size(); ++i) prims_[i].execute(stream_, args_[i]);
    stream_.wait();
  }

  // Every output element is K x 0.5 x 0.25.
  void verify() const {
    for (std::size_t i = 0; i < gemms_.size(); ++i)
      for (float v : c_[i])
        bench::verify(v == static_cast<float>(gemms_[i].K) * 0.125f, std::string(name(lib_)) + " computes K / 8");
  }

 private:
  Lib lib_;
  std::vector<Gemm> gemms_;
  std::vector<std::vector<float>> a32_, b32_, c_;
  std::vector<std::vector<std::uint16_t>> a16_, b16_;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::vector<dnnl::matmul> prims_;
  std::vector<std::unordered_map<int, dnnl::memory>> args_;
};

struct Timing {
  double us = 0;           // median of the slowest thread
  double allocations = 0;  // per set of GEMMs and thread, over kReps untimed repetitions
};

// A spinning barrier for `n` threads, reusable.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    const int gen = gen_.load();
    if (arrived_.fetch_add(1) + 1 == n_) {
      arrived_.store(0);
      gen_.fetch_add(1);
    } else {
      while (gen_.load() == gen) {
      }
    }
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0}, gen_{0};
};

// `threads` threads run the set at once: warm-up, then kReps counted for allocations, then the
// timed repetitions; the median of the slowest thread.
Timing time_us(Lib lib, const std::vector<Gemm>& gemms, int threads) {
  constexpr int kReps = 21;
  std::vector<double> medians(static_cast<std::size_t>(threads));
  Barrier barrier(threads);
  long long before = 0, after = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      omp_set_num_threads(1);  // oneDNN's parallel regions: one thread per device, as sgemm
      std::optional<datarax::nn::MatmulPrecisionScope> bf16;
      if (lib == Lib::datarax_bf16) bf16.emplace(datarax::nn::Precision::bf16);
      Runner r(lib, gemms);
      r.run();
      r.verify();
      r.run();
      barrier.wait();
      if (t == 0) before = bench::allocations();
      barrier.wait();
      for (int k = 0; k < kReps; ++k) r.run();
      barrier.wait();
      if (t == 0) after = bench::allocations();
      barrier.wait();
      medians[static_cast<std::size_t>(t)] = bench::measure({.warmup = 0, .reps = kReps}, [&] { r.run(); }).median();
    });
  for (auto& t : pool) t.join();
  return {*std::max_element(medians.begin(), medians.end()), static_cast<double>(after - before) / (kReps * threads)};
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "gemm_libraries [--rounds N]";
  bench::reject_unknown_flags(argc, argv, {"--rounds"}, usage);
  const int rounds = static_cast<int>(bench::int_flag(argc, argv, "--rounds", 5, 1, usage));
  openblas_set_num_threads(1);
  const dnnl_version_t* v = dnnl_version();
  const bool bf16_isa = dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_bf16 ||
                        dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx;
  std::printf("# gemm_libraries: the default model's step GEMMs, %d rounds; OpenBLAS kernel %s; oneDNN %d.%d.%d, "
              "its ISA %s bf16 instructions\n",
              rounds, openblas_get_corename(), v->major, v->minor, v->patch, bf16_isa ? "with" : "WITHOUT");
  const std::vector<int> rows = {784, 512, 512}, cols = {512, 512, 10};
  struct Case {
    const char* what;
    int devices, batch;
  };
  const std::vector<Case> cases = {{"1 device, batch 256", 1, 256}, {"2 devices at once, batch 128 each", 2, 128}};
  std::vector<Lib> libs = {Lib::openblas_f32, Lib::onednn_sgemm, Lib::onednn_f32, Lib::onednn_bf16};
  if (datarax::nn::cpu_supports(datarax::nn::Precision::bf16)) libs.push_back(Lib::datarax_bf16);
  for (const Case& c : cases) {
    const std::vector<Gemm> gemms = bench::step_gemms(c.batch, rows, cols);
    std::vector<std::vector<double>> us(libs.size());
    std::vector<double> allocs(libs.size());
    for (int r = 0; r < rounds; ++r)
      for (std::size_t i = 0; i < libs.size(); ++i) {
        const Timing t = time_us(libs[i], gemms, c.devices);
        us[i].push_back(t.us);
        allocs[i] = std::max(allocs[i], t.allocations);
      }
    std::printf("\n## %s (%.2f GFLOP per device per step)\n\nlibrary | ms per step | GFLOP/s per device | bound samples/s | "
                "vs OpenBLAS | allocations per step per device\n---|---|---|---|---|---\n",
                c.what, bench::flops(gemms) / 1e9);
    const double base = bench::Samples(us[0]).median();
    for (std::size_t i = 0; i < libs.size(); ++i) {
      const double m = bench::Samples(us[i]).median();
      std::printf("%s | %.3f | %.1f | %.0f | %.2f | %.1f\n", name(libs[i]), m / 1e3, bench::flops(gemms) / (m * 1e3),
                  256.0 / (m / 1e6), base / m, allocs[i]);
    }
  }
  return 0;
}
