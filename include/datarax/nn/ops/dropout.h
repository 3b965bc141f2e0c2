// dropout: inverted dropout whose mask depends only on (seed, step, GLOBAL example index, element
// index within the example) — so an example gets the same mask whatever the number of devices
// and wherever it lands in a shard.
//
//   x [B, ...] (axis 0 holds examples), step and first_example: one-element i32 or i64 inputs
//   y = x · keep / (1 − rate),  keep = 1 unless bits(seed, step, first_example + b, e) < rate
//
// where e is the element's index within example b (0..numel/B − 1) and the bits are counter-based
// SplitMix64 draws (core/splitmix64.h), computed again in backward rather than stored: the op keeps
// nothing between forward and backward. step and first_example are Vars, not numbers, because a
// recording is replayed with new values: put them in the batch (a data-parallel caller passes the
// global index of its shard's first example: device d of n with per-device batch b passes d · b),
// and change them every step. Use a different seed per dropout site (a model seed mixed with the
// site's number), or two sites draw the same mask.
//
// rate 0 returns x itself (no op). rate outside [0, 1) is refused naming it; so is a step or
// first_example that is negative (at any forward) or not a one-element i32/i64 Var.
#pragma once

#include <cstdint>

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var dropout(Var x, double rate, std::uint64_t seed, Var step, Var first_example);

// Whether dropout keeps element `element` of global example `example` at `step` (the mask itself,
// for tests and for callers that need it outside a graph).
bool dropout_keeps(double rate, std::uint64_t seed, std::uint64_t step, std::uint64_t example, std::uint64_t element);

}  // namespace datarax::nn
