// Matrix products as ops: matmul and linear (a dense layer), with their gradients. Every product
// goes through nn::matmul (nn/matmul.h), so the calling thread's precision applies: inside an
// nn::MatmulPrecisionScope(Precision::bf16) the products of forward AND backward run in bf16
// mixed precision, as PyTorch's autocast does.
#pragma once

#include "datarax/nn/graph.h"

namespace datarax::nn {

// a [..., K] · b [K, N] -> [..., N]: a's leading dimensions are rows (folded into one).
Var matmul(Var a, Var b);
// x [..., in] · kernel [in, out] + bias [out] -> [..., out] (Flax's Dense: kernel [in, out]).
Var linear(Var x, Var kernel, Var bias);
// relu(linear(x, kernel, bias)) as one op: the same values, without two more passes over the output
// (the ReLU's derivative at 0 is taken as 0, as relu's).
Var linear_relu(Var x, Var kernel, Var bias);

}  // namespace datarax::nn
