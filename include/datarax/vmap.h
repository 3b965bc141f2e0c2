// vmap: map a per-example function over the leading axis of a batch and stack the results (JAX's
// vmap with in_axes = out_axes = 0). The function runs once per example, on the calling thread —
// inside pmap or shard_map, that is the device's own thread.
//
//   auto forward = vmap([&](const Array& x) { return model(x); });   // x: one example
//   Array logits = forward(batch);                                    // batch: [B, ...]
#pragma once

#include <functional>

#include "datarax/array.h"
#include "datarax/tree.h"

namespace datarax {

// Every result must have the same shape and dtype (and, for trees, the same keys); otherwise
// InvalidArgumentError names the example that differs.
std::function<Array(const Array&)> vmap(std::function<Array(const Array&)> fn);
std::function<Tree(const Tree&)> vmap(std::function<Tree(const Tree&)> fn);

}  // namespace datarax
