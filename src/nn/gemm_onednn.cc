// bf16 matrix products through oneDNN's matmul primitive: the route to Intel's AMX tiles, whose
// bf16 rate is 6–7× the f32 FMA rate on the Xeons that have them (oneDNN 2.6 dispatches its
// matmul to `brg:avx512_core_amx` there, and to VDPBF16PS `brg:avx512_core_bf16` on other
// AVX512_BF16 CPUs). Built only where oneDNN was found (DATARAX_HAVE_ONEDNN); matmul_kernel.cc
// offers it as a bf16 candidate and keeps it only where it measures fastest.
//
// Each calling thread keeps its own primitives, one per product shape (transposes, extents, C's row
// length, alpha, beta), created at the shape's first call with a user scratchpad, and its own
// buffers for the operands rounded to bf16 (to nearest, ties to even: the rounding of gemm_bf16)
// and for that scratchpad, grown at first use. oneDNN runs on OpenMP in Debian's build; the thread
// pins OpenMP to itself (omp_set_num_threads(1)) at its first product, so each device stays one
// thread, as with the other kernels.
//
// What a call still allocates: oneDNN's execute builds a map of its arguments on the heap,
// 7 small allocations per product measured with oneDNN 2.6.3 (bench/gemm_libraries counts them),
// with the user scratchpad as with the library's. No public call of that version avoids it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "datarax/error.h"
#include "nn/avx512_tile.h"
#include "nn/gemm.h"

#if DATARAX_HAVE_ONEDNN
#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>
#endif

namespace datarax::nn::detail {

#if DATARAX_HAVE_ONEDNN

namespace {

// Linux keeps the AMX tile data out of a process's state until the process asks for it
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), Linux 5.16+); a tile instruction before
// that faults. Asked once, only where CPUID shows AMX; the answer is kept for datarax-info.
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

bool cpuid_has_amx_bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  return ((edx >> 22) & 1U) != 0 && ((edx >> 24) & 1U) != 0;  // AMX-BF16, AMX-TILE
}

const std::string& amx_state() {
  static const std::string state = [] {
    if (!cpuid_has_amx_bf16()) return std::string("this CPU has no AMX tiles");
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
      return "AMX tiles present, but Linux refused the tile state (arch_prctl ARCH_REQ_XCOMP_PERM: " +
             std::string(std::strerror(errno)) + "): oneDNN cannot use them";
    return std::string("AMX tiles present and granted by Linux");
  }();
  return state;
}

bool isa_has_bf16(dnnl::cpu_isa isa) {
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

// f32 rows → bf16 rows, rounded to nearest even (VCVTNEPS2BF16; NaN stays NaN).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void to_bf16(std::int64_t rows, std::int64_t cols,
                                                                             const float* src, std::int64_t ld,
                                                                             std::uint16_t* dst) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * ld;
    std::uint16_t* d = dst + r * cols;
    std::int64_t j = 0;
    for (; j + 16 <= cols; j += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j),
                          reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(s + j))));
    if (j < cols) {
      const auto m = static_cast<__mmask16>((1U << (cols - j)) - 1U);
      _mm256_mask_storeu_epi16(d + j, m, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + j))));
    }
  }
}

struct Key {
  bool ta, tb;
  std::int64_t M, N, K, ldc;
  float alpha, beta;
  bool operator==(const Key& o) const {
    return ta == o.ta && tb == o.tb && M == o.M && N == o.N && K == o.K && ldc == o.ldc &&
           std::memcmp(&alpha, &o.alpha, sizeof alpha) == 0 && std::memcmp(&beta, &o.beta, sizeof beta) == 0;
  }
};

struct Entry {
  Key key;
  dnnl::matmul prim;
  dnnl::memory a, b, c, scratch;
};

// A thread's engine, stream, primitives and buffers.
struct ThreadState {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<std::unique_ptr<Entry>> entries;  // most recently created last
  std::vector<std::uint16_t> a16, b16;
  std::vector<char> scratch;

  // A model has a few dozen product shapes; a caller that keeps making new ones (a growing KV
  // cache) recycles the oldest primitive instead of holding them all.
  static constexpr std::size_t kMaxEntries = 256;

  Entry& entry(const Key& k) {
    for (auto& e : entries)
      if (e->key == k) return *e;
    using dt = dnnl::memory::data_type;
    using dims = dnnl::memory::dims;
    const dnnl::memory::desc a_md(dims{k.M, k.K}, dt::bf16, k.ta ? dims{1, k.M} : dims{k.K, 1});
    const dnnl::memory::desc b_md(dims{k.K, k.N}, dt::bf16, k.tb ? dims{1, k.K} : dims{k.N, 1});
    const dnnl::memory::desc c_md(dims{k.M, k.N}, dt::f32, dims{k.ldc, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (k.alpha != 1.0F) attr.set_output_scales(0, {k.alpha});
    if (k.beta != 0.0F) {
      dnnl::post_ops po;
      po.append_sum(k.beta);
      attr.set_post_ops(po);
    }
    dnnl::matmul::primitive_desc pd;
    try {
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), attr, engine);
    } catch (const dnnl::error& err) {
      throw Error("gemm_onednn_bf16: oneDNN made no matmul for M=" + std::to_string(k.M) + " N=" + std::to_string(k.N) +
                  " K=" + std::to_string(k.K) + ": " + err.what());
    }
    if (pd.scratchpad_desc().get_size() > scratch.size()) {
      scratch.resize(pd.scratchpad_desc().get_size());
      for (auto& e : entries) e->scratch.set_data_handle(scratch.data());
    }
    if (entries.size() >= kMaxEntries) entries.erase(entries.begin());
    auto e = std::make_unique<Entry>(Entry{k, dnnl::matmul(pd), dnnl::memory(a_md, engine, DNNL_MEMORY_NONE),
                                           dnnl::memory(b_md, engine, DNNL_MEMORY_NONE),
                                           dnnl::memory(c_md, engine, DNNL_MEMORY_NONE),
                                           dnnl::memory(pd.scratchpad_desc(), engine, scratch.data())});
    entries.push_back(std::move(e));
    return *entries.back();
  }
};

ThreadState& thread_state() {
  thread_local const bool pinned = [] {
    omp_set_num_threads(1);
    return true;
  }();
  (void)pinned;
  thread_local ThreadState state;
  return state;
}

}  // namespace

bool onednn_built() { return true; }

bool cpu_has_onednn_bf16() {
  static const bool has = [] {
    (void)amx_state();  // before oneDNN reads the ISA: AMX counts only once Linux grants it
    return cpu_has_bf16_dot() && isa_has_bf16(dnnl::get_effective_cpu_isa());
  }();
  return has;
}

std::string onednn_about() {
  const dnnl_version_t* v = dnnl_version();
  std::string isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx: isa = "avx512_core_amx (AMX tiles)"; break;
    case dnnl::cpu_isa::avx512_core_bf16: isa = "avx512_core_bf16 (VDPBF16PS)"; break;
    case dnnl::cpu_isa::avx512_core: isa = "avx512_core (no bf16 instruction)"; break;
    default: isa = "below AVX-512 (no bf16 instruction)"; break;
  }
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         ", ISA " + isa + "; " + amx_state();
}

void gemm_onednn_bf16(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                      const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                      std::int64_t ldc) {
  if (!cpu_has_onednn_bf16())
    throw UnsupportedError("gemm_onednn_bf16: oneDNN has no bf16 matmul on this CPU (" + onednn_about() + ")");
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0F) {  // a sum of nothing (BLAS reads no operand when alpha is 0)
    avx512::scale_c(M, N, beta, C, ldc);
    return;
  }
  ThreadState& ts = thread_state();
  Entry& e = ts.entry(Key{trans_a, trans_b, M, N, K, ldc, alpha, beta});
  // The operands as stored (A: M × K, or K × M when transposed; B likewise), rounded to bf16 into
  // dense buffers whose strides the primitive was made with.
  const auto need = [](std::vector<std::uint16_t>& v, std::int64_t n) {
    if (static_cast<std::size_t>(n) > v.size()) v.resize(static_cast<std::size_t>(n));
  };
  need(ts.a16, M * K);
  need(ts.b16, K * N);
  to_bf16(trans_a ? K : M, trans_a ? M : K, A, lda, ts.a16.data());
  to_bf16(trans_b ? N : K, trans_b ? K : N, B, ldb, ts.b16.data());
  e.a.set_data_handle(ts.a16.data());
  e.b.set_data_handle(ts.b16.data());
  e.c.set_data_handle(C);
  // The C API with a fixed array: the C++ wrapper's execute would add a vector per call.
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, e.a.get()},
                                  {DNNL_ARG_WEIGHTS, e.b.get()},
                                  {DNNL_ARG_DST, e.c.get()},
                                  {DNNL_ARG_SCRATCHPAD, e.scratch.get()}};
  const dnnl_status_t st = dnnl_primitive_execute(e.prim.get(), ts.stream.get(), 4, args);
  if (st != dnnl_success)
    throw Error("gemm_onednn_bf16: oneDNN's matmul failed (status " + std::to_string(static_cast<int>(st)) + ")");
}

#else  // built without oneDNN

bool onednn_built() { return false; }
bool cpu_has_onednn_bf16() { return false; }
std::string onednn_about() { return "datarax was built without oneDNN"; }
void gemm_onednn_bf16(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*, std::int64_t,
                      const float*, std::int64_t, float, float*, std::int64_t) {
  throw UnsupportedError("gemm_onednn_bf16: datarax was built without oneDNN (Debian: libdnnl-dev)");
}

#endif

}  // namespace datarax::nn::detail
