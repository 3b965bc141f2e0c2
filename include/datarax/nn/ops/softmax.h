// softmax and log_softmax along one axis, with their gradients.
//
//   softmax(x)[i]     = exp(x[i] − max x) / Σ_j exp(x[j] − max x)
//   log_softmax(x)[i] = x[i] − max x − log Σ_j exp(x[j] − max x)
//
// Stable at any logit scale (the max is subtracted first; exp never sees a positive argument). The
// axis may be negative (−1 is the last); an axis outside −rank..rank−1 is refused naming the range.
// An axis of extent 0 gives an empty result.
#pragma once

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var softmax(Var x, int axis = -1);
Var log_softmax(Var x, int axis = -1);

}  // namespace datarax::nn
