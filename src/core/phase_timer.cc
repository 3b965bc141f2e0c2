#include "datarax/phase_timer.h"

namespace datarax {

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::batch_wait: return "batch_wait";
    case Phase::forward_gemm: return "forward_gemm";
    case Phase::forward_elementwise: return "forward_elementwise";
    case Phase::loss: return "loss";
    case Phase::backward_gemm: return "backward_gemm";
    case Phase::backward_elementwise: return "backward_elementwise";
    case Phase::collectives: return "collectives";
    case Phase::optimizer: return "optimizer";
    case Phase::metrics: return "metrics";
    case Phase::other: return "other";
  }
  return "invalid";
}

}  // namespace datarax
