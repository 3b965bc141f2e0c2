// transpose: the axes of x in another order, with its gradient (the inverse permutation).
//
//   out.shape[i] = x.shape[perm[i]],  out[i_0, ..., i_{r-1}] = x[j] with j[perm[k]] = i_k
//
// as numpy.transpose(x, perm). perm must hold each of 0..rank-1 exactly once; a wrong length, an
// axis out of range or a repeated axis is refused naming the permutation. The output is its own
// buffer (a strided copy).
#pragma once

#include <vector>

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var transpose(Var x, std::vector<int> perm);

}  // namespace datarax::nn
