// broadcast_to: x repeated to a larger shape (numpy.broadcast_to), with its gradient (the sum over
// the repeated dimensions).
//
//   x [d_0, ..., d_{r-1}] -> out `shape` (rank R >= r): x's dimensions align with the LAST r of
//   shape, each equal to its counterpart or 1 (repeated); the R - r leading ones are new.
//
// A per-example weight [B] becomes a per-position one [B, T] as broadcast_to(reshape(w, {B, 1}),
// {B, T}): what a language model's loss needs from a batch's row mask. Anything that does not
// broadcast is refused naming both shapes. The output is its own buffer.
#pragma once

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var broadcast_to(Var x, Shape shape);

}  // namespace datarax::nn
