// embedding: rows of a table picked by integer ids, with the table's gradient.
//
//   table [V, C], ids i32 [...] -> out [..., C],  out[p] = table[ids[p]]
//
// ids are data (an input Var, no gradient) and change at every replay, so they are checked at
// every forward: an id outside 0..V-1 is refused naming the first bad id and its position. The
// backward scatter-adds dout's rows into the table's gradient (a row used twice gets both).
#pragma once

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var embedding(Var table, Var ids);

}  // namespace datarax::nn
