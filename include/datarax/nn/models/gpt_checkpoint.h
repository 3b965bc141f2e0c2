// GPT-2's checkpoint format: Gpt's parameters (gpt.h) as Hugging Face stores GPT-2 in safetensors,
// so a file written by transformers' GPT2Model / GPT2LMHeadModel (or nanoGPT converted to it)
// loads, and a file we save loads there.
//
//   wte.weight [V, C]                     <->  wte/embedding
//   wpe.weight [block_size, C]            <->  wpe/embedding
//   h.{i}.ln_1.weight / .bias [C]         <->  h_i/ln_1/scale / bias      (ln_2 and ln_f alike)
//   h.{i}.attn.c_attn.weight [C, 3C]      <->  h_i/attn/c_attn/kernel [C, 3, C] (the same bytes:
//   h.{i}.attn.c_attn.bias [3C]           <->  h_i/attn/c_attn/bias [3, C]       q, k, v blocks)
//   h.{i}.attn.c_proj.weight [C, C]       <->  h_i/attn/c_proj/kernel         (.bias: bias)
//   h.{i}.mlp.c_fc.weight [C, 4C]         <->  h_i/mlp/c_fc/kernel            (.bias: bias)
//   h.{i}.mlp.c_proj.weight [4C, C]       <->  h_i/mlp/c_proj/kernel          (.bias: bias)
//   ln_f.weight / ln_f.bias [C]           <->  ln_f/scale / ln_f/bias
//
// Weights are [in, out] (GPT-2's Conv1D), as our kernels. Reading accepts a "transformer." prefix
// on every name (GPT2LMHeadModel's), an optional lm_head.weight (the tied head: it must equal
// wte.weight), and ignores the buffers h.{i}.attn.bias and h.{i}.attn.masked_bias. Tensors of any
// float dtype are converted to the requested one.
//
// The sizes travel in the file's __metadata__ as decimal strings: n_layer, n_head, n_embd,
// block_size, vocab_size. A file without them (Hugging Face's own) gets its sizes from the shapes;
// n_head then is n_embd / 64 (GPT-2's head width, every released GPT-2 size).
#pragma once

#include <map>
#include <string>

#include "datarax/dtype.h"
#include "datarax/nn/models/gpt.h"
#include "datarax/tree.h"

namespace datarax::nn {

// The file's tensors (as load_safetensors gives them) -> Gpt's parameters for `config`, in
// `dtype`. Refused with InvalidArgumentError naming the tensor: a missing one, an unknown one, a
// shape that does not fit ("gpt_from_hf: h.0.attn.c_attn.weight has shape [8, 16]; expected
// [8, 24] for n_embd 8"), a non-float dtype, or an lm_head.weight that differs from wte.weight.
Tree gpt_from_hf(const Tree& file, const GptConfig& config, DType dtype = DType::f32);
// Gpt's parameters (whole, not blocks) -> the file's tensors (no prefix, no lm_head), same dtype.
Tree gpt_to_hf(const Tree& params);

// The sizes of a file: from its metadata where it has them, the rest from the tensors' shapes.
// Refused naming what is missing or malformed.
GptConfig gpt_config_from_hf(const Tree& file, const std::map<std::string, std::string>& metadata);
// Refuses (InvalidArgumentError) a file whose metadata states a size other than `config`'s,
// naming both ("gpt_from_hf: the file's __metadata__ has n_head 4; this model has n_head 2 (...)"):
// the tensors' shapes show every size but n_head, which only the metadata holds, so a file read
// for a model of other heads would otherwise load, as another model. Sizes the metadata leaves
// out, and other keys, are not checked here.
void check_gpt_metadata(const std::map<std::string, std::string>& metadata, const GptConfig& config);
// The __metadata__ that save_gpt writes for `config`.
std::map<std::string, std::string> gpt_hf_metadata(const GptConfig& config);

// A GPT-2-format safetensors file, read or written whole (io/safetensors.h: written atomically).
struct GptCheckpoint {
  GptConfig config;
  Tree params;
};
GptCheckpoint load_gpt(const std::string& path, DType dtype = DType::f32);
void save_gpt(const std::string& path, const Tree& params, const GptConfig& config);

}  // namespace datarax::nn
