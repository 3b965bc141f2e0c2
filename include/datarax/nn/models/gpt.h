// Gpt: GPT-2's architecture as nanoGPT writes it, as a datarax module.
//
//   tokens i32 [B, T] (T <= block_size)
//   x = wte[tokens] + wpe[0..T-1]                                   [B, T, C]
//   n_layer blocks h_i, pre-LayerNorm (eps 1e-5):
//     x = x + attn(ln_1(x))   causal self-attention, n_head heads of D = C / n_head:
//                             c_attn (one fused q, k, v projection), causal_attention, c_proj
//     x = x + mlp(ln_2(x))    c_fc (4C), exact (erf) GELU, c_proj
//   logits = ln_f(x) · wteᵀ   the LM head tied to the token embedding   [B, T, V]
//
// Parameters (keys; Flax names, kernels [in, out]) and GPT-2's init (normal 0.02; the two c_proj
// kernels normal 0.02 / √(2 · n_layer); biases zero; LayerNorm scale one):
//   wte/embedding [V, C]                 wpe/embedding [block_size, C]
//   h_i/ln_1/{scale,bias} [C]            h_i/ln_2/{scale,bias} [C]
//   h_i/attn/c_attn/kernel [C, 3, C]     h_i/attn/c_attn/bias [3, C]
//   h_i/attn/c_proj/kernel [C, C]        h_i/attn/c_proj/bias [C]
//   h_i/mlp/c_fc/kernel [C, 4C]          h_i/mlp/c_fc/bias [4C]
//   h_i/mlp/c_proj/kernel [4C, C]        h_i/mlp/c_proj/bias [C]
//   ln_f/{scale,bias} [C]
// c_attn's kernel [C, 3, C] is GPT-2's [C, 3C] (q, k, v the three C-wide column blocks, heads
// contiguous within each) with the blocks made a dimension, the same bytes: gpt_checkpoint.h
// converts by reshaping.
//
// Tensor parallelism over mesh axis "model" (Megatron), declared by the parameters' shardings
// (param_specs(), sharding_rules()): c_attn split by heads — kernel P(None, None, "model"), bias
// P(None, "model"), so each device holds H/M heads of q, of k and of v; attn c_proj row-parallel
// (kernel P("model")); mlp c_fc column-parallel, mlp c_proj row-parallel; embeddings and LayerNorms
// replicated. The forward sees from the local kernel's shape whether it got a block and inserts
// copy_to_axis / sum_over_axis (ops/collective.h); with whole parameters it is the one-device
// model. n_head must be divisible by the axis size: check_model_axis().
//
// Dropout (config.dropout > 0, training only): after the embeddings and on each residual branch
// (after attn c_proj and after mlp c_proj), as nanoGPT's drop and resid_dropout. nanoGPT's
// dropout of the attention probabilities is not applied: the tiled attention op keeps no
// probability matrix to drop from. Every site drops from a whole [B, T, C] tensor — the
// embeddings are replicated and the c_proj layers sum their blocks over "model" before — so the
// element indices are the global ones and every layout draws the 1-device masks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datarax/nn/layers/embed.h"
#include "datarax/nn/layers/layer_norm.h"
#include "datarax/nn/module.h"
#include "datarax/nn/var_tree.h"

namespace datarax::nn {

struct GptConfig {
  std::int64_t vocab_size = 256;  // bytes
  std::int64_t block_size = 64;   // the longest context (wpe's rows)
  std::int64_t n_layer = 4;
  std::int64_t n_head = 4;
  std::int64_t n_embd = 128;  // C; divisible by n_head
  double dropout = 0.0;       // in [0, 1)

  // InvalidArgumentError "GptConfig: <field> = <value>; <valid range>" for the first bad field.
  void validate() const;
  // "n_layer 4, n_head 4, n_embd 128, block_size 64, vocab_size 256, dropout 0"
  std::string to_string() const;
  std::int64_t head_size() const { return n_embd / n_head; }
};

class Gpt : public Module {
 public:
  explicit Gpt(GptConfig config);
  ~Gpt() override;

  // tokens i32 [B, T] with 1 <= T <= block_size, every id in 0..vocab_size-1 -> logits [B, T, V].
  // Evaluation mode: no dropout.
  Var logits(const VarTree& p, Var tokens) const;

  // The training loss, with this batch contract (the trainer's Loader gives it):
  //   inputs i32 [b, T], labels i32 [b, T]   the blocks of this device (token_blocks.h)
  //   mask   [b] of the parameters' dtype     1 for a real row, 0 for padding
  //   count  one element, same dtype          the real rows of the GLOBAL batch / the data axis' size
  //   step, first_example (i32 or i64 [])     only when config.dropout > 0 and training: the
  //                                           global step and the global index of row 0
  //                                           (nn::dropout; the trainer's batch has both)
  // loss = Σ_{rows r, positions t} mask[r] · CE(logits[r, t], labels[r, t]) / (count · T), so the
  // MEAN of the devices' losses (and gradients) over the data axis is the global mean
  // cross-entropy over B · T positions. training = false: no dropout (evaluation).
  Var loss(const VarTree& p, const VarTree& batch, bool training = true) const;

  // Refuses (InvalidArgumentError naming the valid sizes) a "model" axis of m devices that does
  // not divide n_head: "Gpt: n_head 6 is not divisible by the model axis of 4 devices; valid
  // model-axis sizes: 1, 2, 3, 6".
  void check_model_axis(int m) const;

  const GptConfig& config() const { return config_; }

  struct Block;  // one transformer block (gpt.cc)

 private:
  Var forward(const VarTree& p, Var tokens, const VarTree* dropout_batch) const;

  GptConfig config_;
  Embed wte_, wpe_;
  std::vector<std::unique_ptr<Block>> h_;
  LayerNorm ln_f_;
};

}  // namespace datarax::nn
