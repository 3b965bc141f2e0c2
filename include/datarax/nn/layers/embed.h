// Embed: Flax's nn.Embed — parameter `embedding` [num_embeddings, features]; ids i32 [...] ->
// [..., features] (ops/embedding.h: an id outside 0..num_embeddings−1 is refused at any forward).
// Initialized normal(stddev 0.02) by default, GPT-2's token and position embeddings' init.
#pragma once

#include <cstdint>
#include <string>

#include "datarax/nn/module.h"
#include "datarax/nn/var_tree.h"

namespace datarax::nn {

struct EmbedOptions {
  Initializer embedding_init = init::normal(0.02);
  PartitionSpec embedding_sharding{};
};

class Embed : public Module {
 public:
  Embed(Module& parent, std::string name, std::int64_t num_embeddings, std::int64_t features, EmbedOptions options = {});
  Var operator()(const VarTree& p, Var ids) const;

  const Param& embedding() const { return embedding_; }

 private:
  Param embedding_;
};

}  // namespace datarax::nn
