// Global-norm gradient clipping: optax.clip_by_global_norm, as functions on a Tree.
//
// Not an Optimizer: clipping needs the norm over ALL the gradients, which a device holding a slice
// (ZeRO-1) does not have alone. There, each device computes sum_of_squares of its slice, the
// devices add them (psum), and each calls clip_by_global_norm with norm = √(that sum).
#pragma once

#include "datarax/tree.h"

namespace datarax::optim {

// Σ over every leaf of Σ x², accumulated in double (f32 and f64 leaves; DTypeError otherwise).
double sum_of_squares(const Tree& tree);

// √(sum_of_squares(tree)): optax.global_norm.
double global_norm(const Tree& tree);

// If global_norm(updates) >= max_norm, scales every leaf by max_norm / norm (in place); below it,
// leaves updates alone. max_norm > 0. Returns the norm before clipping (for logging).
double clip_by_global_norm(Tree& updates, double max_norm);

// The same with the norm given, e.g. reduced across devices; returns it.
double clip_by_global_norm(Tree& updates, double max_norm, double norm);

}  // namespace datarax::optim
