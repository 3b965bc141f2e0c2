// Tensor parallelism inside a differentiable function: Megatron's two conjugate operators, as ops.
//
//   copy_to_axis(x, "model")   forward: x as is (every device of the axis holds the same x);
//                              backward: the gradient summed over the axis (all-reduce).
//                              Megatron's "f", before a column-parallel layer.
//   sum_over_axis(x, "model")  forward: the sum of x over the axis' devices (all-reduce);
//                              backward: the gradient as is. Megatron's "g", after a
//                              row-parallel layer (each device's partial product).
//
// A module written with them runs unchanged on one device: where the code does not run inside
// SPMD on a mesh with that axis, or the axis has one device, both are the identity (and record
// no collective). axis_devices(axis) says how many devices share the axis there.
// Collective: every device of the axis records and replays the same ops in the same order.
#pragma once

#include <string>

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var copy_to_axis(Var x, const std::string& axis);
Var sum_over_axis(Var x, const std::string& axis);

// The number of devices on `axis` of the current SPMD mesh; 1 outside SPMD or on a mesh without it.
int axis_devices(const std::string& axis);

}  // namespace datarax::nn
