// causal_attention: causal scaled-dot-product attention as one op, tiled (FlashAttention-2).
//
//   q, k, v [B, T, H, D] -> out [B, T, H, D]
//   out[b, t, h] = Σ_{s <= t} softmax_s(q[b, t, h] · k[b, s, h] / √D) · v[b, s, h]
//
// Layout: [B, T, H, D] is what a GPT's fused projection gives without a transpose — c_attn's
// output [B, T, 3C] reshaped to [B, T, 3, H, D] and sliced on axis 2 gives q, k and v, and the
// output reshaped to [B, T, C] feeds c_proj directly. The op reads each head with row stride
// H · D, so no [B, H, T, D] copy is ever made.
//
// Forward walks query tiles of 64 rows and, for each, the key tiles at or before it with an online
// softmax (running max and sum, the output rescaled as the max grows); it saves only each row's
// log-sum-exp. Backward recomputes each tile's scores and probabilities from q, k and that
// log-sum-exp. Tile products go through nn::matmul (so bf16 scopes apply); the rest are loops.
// The result equals the untiled formula up to rounding.
//
// Memory the op keeps (elements of q's dtype, allocated at recording, t = min(T, 64)):
//   B · H · T            the log-sum-exp per row, from forward to backward
//   + 2 · t² + 2 · t     scratch: one score/probability tile, one dP tile, two per-row vectors
// — no T × T matrix per head. For B 8, H 6, D 64 in f32: T = 256 → 49,152 + 33,280 = 82,432
// bytes; T = 1024 → 196,608 + 33,280 = 229,888 bytes (a materialized T × T probability matrix per
// head would take 12.6 MB and 201 MB).
//
// q, k and v must have one shape [B, T, H, D] with D >= 1; anything else is refused naming the
// shapes (and, packed, qkv must be [B, T, 3 · heads · D] with heads, D >= 1).
#pragma once

#include "datarax/nn/graph.h"

namespace datarax::nn {

Var causal_attention(Var q, Var k, Var v);

// The same on q, k and v packed side by side, as a GPT's fused projection gives them:
//
//   qkv [B, T, 3 · C] -> out [B, T, C],  C = heads · D
//
// q is qkv[..., 0:C], k qkv[..., C:2C] and v qkv[..., 2C:3C] (nanoGPT's qkv.split(C, dim=2)), each
// [B, T, heads, D] in memory, and out is [B, T, heads, D] in memory: the op reads the three in
// place (row stride 3 · C) and writes the gradient of qkv whole, so no split, slice or reshape
// copy is made on either side. The same values and gradients as the three-input form on the
// split operands.
Var causal_attention(Var qkv, std::int64_t heads);

}  // namespace datarax::nn
