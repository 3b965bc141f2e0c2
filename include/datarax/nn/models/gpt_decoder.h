// GptDecoder: a Gpt (gpt.h) run for generation, one token at a time, with a KV cache — each new
// token costs one position (its own q, k, v and its attention over the cached keys and values),
// not a pass over the whole prefix. Not differentiable and not part of a recording: plain loops
// and nn::matmul over the parameters' values, the same arithmetic as Gpt::logits (the tests compare
// the two at every position).
//
//   GptDecoder dec(config, params);            // whole parameters, f32 or f64
//   const Array& logits = dec.step(token);     // [V]: the next token's logits after `token`
//
// generate() is nanoGPT's sampling loop on top: the context is cropped to its last block_size
// tokens (nanoGPT's idx[:, -block_size:]); once the context is longer than that, every new token
// refills the cache with the cropped context (the positions of the kept tokens change), so beyond
// block_size tokens each new one costs block_size positions, as in nanoGPT.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "datarax/array.h"
#include "datarax/nn/models/gpt.h"
#include "datarax/tree.h"

namespace datarax::nn {

class GptDecoder {
 public:
  // params: Gpt's whole parameters for `config` (f32 or f64; the decoder computes in that dtype
  // and keeps a cache of 2 · n_layer · block_size · n_embd elements of it). Refused naming the
  // parameter whose shape or dtype does not fit.
  GptDecoder(const GptConfig& config, const Tree& params);
  ~GptDecoder();
  GptDecoder(const GptDecoder&) = delete;
  GptDecoder& operator=(const GptDecoder&) = delete;

  // Feeds `token` at position position() and returns the logits [V] for the token after it (a
  // buffer the next step overwrites). A token outside 0..V-1, or a full cache (position() ==
  // block_size), is refused naming it.
  const Array& step(std::int32_t token);
  // Empties the cache: the next token is at position 0.
  void reset();
  std::int64_t position() const;
  const GptConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct SamplingOptions {
  double temperature = 1.0;  // > 0: logits / temperature; 0: the most likely token (greedy)
  std::int64_t top_k = 0;    // > 0: sample among the top_k logits only; 0: all
  std::uint64_t seed = 1337;
};

// Draws a token from logits [V] (f32 or f64) as nanoGPT does: divide by the temperature, keep the
// top_k largest (ties at the k-th value kept, as nanoGPT's `logits < v[-1]`), softmax, sample with
// a uniform draw from `state` (SplitMix64, advanced). Refuses a negative temperature or top_k.
std::int32_t sample_token(const Array& logits, const SamplingOptions& options, std::uint64_t& state);

// nanoGPT's generate: `prompt` (at least one token) then max_new_tokens sampled tokens, each
// passed to on_token as it is drawn. Returns the new tokens. The decoder is reset first.
std::vector<std::int32_t> generate(GptDecoder& decoder, std::span<const std::int32_t> prompt,
                                   std::int64_t max_new_tokens, const SamplingOptions& options,
                                   const std::function<void(std::int32_t)>& on_token = {});

}  // namespace datarax::nn
