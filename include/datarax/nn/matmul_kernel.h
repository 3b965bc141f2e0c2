// Which kernel runs nn's float matrix products, per precision, chosen on this CPU by measurement.
//
// Candidates (those this CPU can run):
//   openblas     OpenBLAS's sgemm (f32)
//   avx512       datarax's own AVX-512 FMA kernel (f32; AVX-512F)
//   avx512_bf16  datarax's VDPBF16PS kernel (bf16 mixed precision; AVX512_BF16)
//   onednn_bf16  oneDNN's matmul primitive on bf16 operands, f32 sums (bf16 mixed precision; where
//                datarax was built with oneDNN and oneDNN has a bf16 ISA here: AMX tiles on the
//                Xeons that have them, whose tile state the first use asks Linux for, else
//                VDPBF16PS). Its products allocate: oneDNN's execute builds an argument map on the
//                heap, 7 small allocations a product with oneDNN 2.6.3, so a step on it is not
//                allocation-free; the other kernels allocate nothing after a shape's first call.
// The same CPU feature can be fast on one CPU and slow on another: VDPBF16PS doubles the f32 rate
// on AMD Zen 4 and gains nothing on Intel's Xeons (one port), and an OpenBLAS that does not know
// the CPU's model runs an SSE3 kernel, and AMX tiles run bf16 at 6–7× the f32 rate. So the choice is measured, not assumed: at the first product
// of a precision (or when choose_matmul_kernel is called with a model's own shapes) every
// candidate is timed for a few milliseconds and the fastest is kept, process-wide. OpenBLAS, the
// reference, is replaced only by a kernel at least 10% faster, so that two runs of one program on
// one machine choose alike (the kernels round differently).
//
// bf16 is a request for speed: where an f32 kernel is at least 10% faster than every bf16 kernel on
// this CPU (avx512_bf16 is bf16's reference), bf16 products run that f32 kernel — f32's exact
// products at f32's speed — and the choice says why
// (KernelChoice::reason; the trainer's header and datarax-info print it).
//
// DATARAX_MATMUL_KERNEL_F32 / DATARAX_MATMUL_KERNEL_BF16 (a kernel name) force a choice, for tests
// and comparisons; a name this CPU cannot run for that precision is refused (InvalidArgumentError
// naming the valid ones, at the first product or choice).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "datarax/nn/precision.h"

namespace datarax::nn {

enum class MatmulKernel : std::uint8_t { openblas, avx512, avx512_bf16, onednn_bf16 };

std::string_view to_string(MatmulKernel kernel);  // "openblas", "avx512", "avx512_bf16", "onednn_bf16"
// Parses the names to_string gives; anything else throws InvalidArgumentError listing them.
MatmulKernel parse_matmul_kernel(std::string_view name);

// Whether this CPU runs `kernel`.
bool cpu_supports(MatmulKernel kernel);
// Whether `kernel` rounds its operands to bf16 (avx512_bf16, onednn_bf16).
bool rounds_to_bf16(MatmulKernel kernel);
// One line on the oneDNN this datarax was built with: its version, the instruction set it runs
// here and whether AMX tiles are present and granted; or that it was built without.
std::string onednn_about();
// The kernels `precision` may use on this CPU, the reference first (bf16: its own kernels, then
// the f32 ones).
std::vector<MatmulKernel> matmul_kernel_candidates(Precision precision);

// One product's shape: C [M, N] = op(A) · op(B) with inner extent K.
struct MatmulShape {
  bool trans_a = false;
  bool trans_b = false;
  std::int64_t M = 0, N = 0, K = 0;
};

struct KernelChoice {
  struct Timing {
    MatmulKernel kernel;
    double gflops;  // over the shapes' total work
  };
  Precision precision = Precision::f32;
  MatmulKernel kernel = MatmulKernel::openblas;
  std::vector<Timing> timings;  // empty when forced
  bool forced = false;          // by the environment or set_matmul_kernel
  std::string reason;           // one line: why this kernel
};

// The kernel `precision`'s products use now; the first call measures (default shapes: a
// 128 x 512 x 512 product in its three transposes) unless forced.
MatmulKernel matmul_kernel(Precision precision);
// The current choice with its timings and reason (measuring first if nothing was chosen yet).
KernelChoice matmul_kernel_choice(Precision precision);
// Times every candidate of `precision` on `shapes` (a model's products) and keeps the fastest,
// unless a kernel is forced (by the environment or set_matmul_kernel), which then stays. Not to be
// called while other threads run products.
KernelChoice choose_matmul_kernel(Precision precision, std::span<const MatmulShape> shapes);
// Forces `kernel` for `precision` (UnsupportedError if this CPU cannot run it;
// InvalidArgumentError if it is not a candidate of that precision).
void set_matmul_kernel(Precision precision, MatmulKernel kernel);
// Undoes set_matmul_kernel: the next product of `precision` measures (or follows the environment).
void unset_matmul_kernel(Precision precision);

}  // namespace datarax::nn
