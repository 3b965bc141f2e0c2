// Element-wise ops on Vars, with their gradients: arithmetic with bias broadcasting, and the
// activations relu, gelu (exact and tanh), tanh and sigmoid.
//
// Broadcasting (add, sub, mul): b's shape must equal a's, or a trailing part of a's shape (a bias
// [C] on activations [B, T, C]), or b has one element (any rank); the result has a's shape, and b's
// gradient sums over the dimensions it was repeated along. Anything else is refused, naming both
// shapes. For b broadcast on the left, swap the operands (add and mul commute; a - b = -(b - a)).
#pragma once

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var add(Var a, Var b);
Var sub(Var a, Var b);
Var mul(Var a, Var b);
// x · c and x + c for a number c.
Var scale(Var x, double c);
Var add_scalar(Var x, double c);

inline Var operator+(Var a, Var b) { return add(a, b); }
inline Var operator-(Var a, Var b) { return sub(a, b); }
inline Var operator*(Var a, Var b) { return mul(a, b); }
inline Var operator*(Var x, double c) { return scale(x, c); }
inline Var operator*(double c, Var x) { return scale(x, c); }
inline Var operator/(Var x, double c) { return scale(x, 1.0 / c); }
inline Var operator+(Var x, double c) { return add_scalar(x, c); }
inline Var operator-(Var x) { return scale(x, -1.0); }

// max(x, 0); the derivative at 0 is taken as 0.
Var relu(Var x);
// GELU. Exact: x · Φ(x) = 0.5 · x · (1 + erf(x / √2)) (PyTorch's default, GPT-2's in nanoGPT);
// approximate: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) (jax.nn.gelu's default).
enum class GeluMode : unsigned char { exact, tanh };
Var gelu(Var x, GeluMode mode = GeluMode::exact);
Var tanh(Var x);
Var sigmoid(Var x);

}  // namespace datarax::nn
