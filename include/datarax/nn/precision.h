// The precision of nn's float matrix products: f32 (the default) or bf16 mixed precision.
//
// bf16 is the mixed-precision recipe of JAX and PyTorch on CPUs with AVX512_BF16: a layer's matrix
// product rounds its two operands to bfloat16 (8 significant bits, round to nearest even) and sums
// the products in f32 (VDPBF16PS); its output, the activations, the loss, the gradients, their
// reduction, the optimizer and the master parameters all stay f32. It roughly doubles the speed of
// the matrix products; each product carries a relative error up to about 2^-7 of Σ|a·b| instead of
// f32's rounding (docs/performance.md, tests/nn/precision_test.cc).
//
// Like PyTorch's autocast, the choice belongs to the calling thread: open a MatmulPrecisionScope
// around the computation to run (the trainer opens one from TrainConfig::precision around each
// step's recording and replay). double products are always f64. No emulation: on a CPU
// without AVX512_BF16, opening a bf16 scope throws UnsupportedError — bf16 there would only be
// slower and no more useful than f32.
#pragma once

#include <cstdint>
#include <string_view>

#include "datarax/error.h"

namespace datarax::nn {

enum class Precision : std::uint8_t { f32, bf16 };

std::string_view to_string(Precision precision);  // "f32", "bf16"
// Parses the names to_string gives; anything else throws InvalidArgumentError listing them.
Precision parse_precision(std::string_view name);

// Whether this CPU runs `precision`'s matrix products natively: f32 always, bf16 with AVX512_BF16
// (and AVX512BW/VL). DATARAX_CPU_NO_BF16=1 in the environment makes bf16 answer false, to test the
// path of a CPU without it.
bool cpu_supports(Precision precision);

// Throws UnsupportedError, naming `op`, the precision and what this CPU offers, unless
// cpu_supports(precision).
void require_supported(Precision precision, std::string_view op);

// The precision of float matrix products on the calling thread: f32 unless a scope is open.
Precision matmul_precision();

// Sets the calling thread's matmul precision until the scope closes (scopes nest; the previous
// one comes back). Throws UnsupportedError for a precision this CPU lacks.
class MatmulPrecisionScope {
 public:
  explicit MatmulPrecisionScope(Precision precision);
  ~MatmulPrecisionScope();
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;

 private:
  Precision previous_;
};

}  // namespace datarax::nn
