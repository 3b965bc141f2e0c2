// Embed (layers/embed.h).
#include "datarax/nn/layers/embed.h"

#include "datarax/error.h"
#include "datarax/nn/ops/embedding.h"

namespace datarax::nn {

Embed::Embed(Module& parent, std::string name, std::int64_t num_embeddings, std::int64_t features, EmbedOptions options)
    : Module(parent, std::move(name)) {
  if (num_embeddings < 1 || features < 1)
    throw InvalidArgumentError("Embed \"" + path() + "\": " + std::to_string(num_embeddings) + " embeddings of " +
                               std::to_string(features) + " features; both must be >= 1");
  embedding_ = param("embedding", {num_embeddings, features}, std::move(options.embedding_init),
                     options.embedding_sharding);
}

Var Embed::operator()(const VarTree& p, Var ids) const { return nn::embedding(p[embedding_], ids); }

}  // namespace datarax::nn
