#include "datarax/nn/precision.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "nn/gemm.h"

namespace datarax::nn {

namespace {
thread_local Precision t_precision = Precision::f32;
}  // namespace

std::string_view to_string(Precision precision) {
  switch (precision) {
    case Precision::f32: return "f32";
    case Precision::bf16: return "bf16";
  }
  return "?";
}

Precision parse_precision(std::string_view name) {
  for (Precision p : {Precision::f32, Precision::bf16})
    if (to_string(p) == name) return p;
  throw InvalidArgumentError("parse_precision: unknown precision \"" + std::string(name) + "\"; valid: f32, bf16");
}

bool cpu_supports(Precision precision) {
  if (precision == Precision::f32) return true;
  const char* off = std::getenv("DATARAX_CPU_NO_BF16");
  if (off != nullptr && std::strcmp(off, "1") == 0) return false;
  return detail::cpu_has_bf16_dot();
}

void require_supported(Precision precision, std::string_view op) {
  if (cpu_supports(precision)) return;
  throw UnsupportedError(std::string(op) + ": precision " + std::string(to_string(precision)) +
                         " needs a CPU with AVX512_BF16 (VDPBF16PS) and this one has none; valid here: f32");
}

Precision matmul_precision() { return t_precision; }

MatmulPrecisionScope::MatmulPrecisionScope(Precision precision) : previous_(t_precision) {
  require_supported(precision, "MatmulPrecisionScope");
  t_precision = precision;
}

MatmulPrecisionScope::~MatmulPrecisionScope() { t_precision = previous_; }

}  // namespace datarax::nn
