#include "datarax/train/trainer.h"

#include <map>
#include <memory>
#include <string>

#include "core/strings.h"
#include "datarax/data/mnist.h"
#include "datarax/data/token_blocks.h"
#include "datarax/io/safetensors.h"
#include "datarax/nn/models/cnn.h"
#include "datarax/nn/models/gpt.h"
#include "datarax/nn/models/gpt_checkpoint.h"
#include "datarax/nn/models/mlp.h"
#include "datarax/nn/ops/reshape.h"
#include "datarax/train/builtin_models.h"
#include "train/host_loop.h"
#include "train/setup.h"

namespace datarax::train {

TrainReport train(const Model& model, const data::Dataset& train_set, const data::Dataset& test_set,
                  const TrainConfig& config, const TrainHooks& hooks) {
  detail::Setup setup(model, train_set, test_set, config, hooks.resume);
  return detail::HostLoop(setup, hooks).run();
}

// ---- the built-in models -------------------------------------------------------------------------

namespace {

using datarax::detail::join;

std::string widths(const std::vector<int>& w) {
  return join(w, ",", [](int x) { return std::to_string(x); });
}

data::ArrayDataset load_split(const TrainConfig& c, const char* split) {
  const std::string dir = c.data_dir.empty() ? data::kDefaultFashionMnistDir : c.data_dir;
  c.validate();  // a bad config is named before the data is read
  try {
    return data::load_mnist(dir, split);
  } catch (const InvalidArgumentError& e) {
    throw ConfigError("data_dir", dir, e.what());
  }
}


// The GPT's sizes from the model's flags and the data's vocabulary.
nn::GptConfig gpt_config(const BuiltinModel& m, std::int64_t vocab) {
  return {.vocab_size = vocab, .block_size = m.block_size, .n_layer = m.n_layer, .n_head = m.n_head, .n_embd = m.n_embd,
          .dropout = m.dropout};
}

TrainReport train_gpt(const BuiltinModel& builtin, const TrainConfig& config, const TrainHooks& hooks) {
  config.validate();
  std::shared_ptr<const data::TokenStream> stream;
  std::string what;
  try {
    if (!builtin.tokens.empty()) {
      what = builtin.tokens;
      stream = std::make_shared<const data::TokenStream>(data::read_token_file(builtin.tokens, builtin.vocab_size));
    } else if (!builtin.text.empty()) {
      what = builtin.text;
      stream = std::make_shared<const data::TokenStream>(data::read_text_tokens(builtin.text));
    } else {
      what = "the fortunes corpus";
      const std::vector<std::string> files = data::fortunes_files();
      stream = std::make_shared<const data::TokenStream>(data::read_text_tokens(files));
    }
  } catch (const InvalidArgumentError& e) {
    throw ConfigError(!builtin.tokens.empty() ? "tokens" : "text", what, e.what());
  }
  std::optional<data::TokenBlocks> train_set, val_set;
  try {
    train_set.emplace(stream, data::Split::train, builtin.block_size);
    val_set.emplace(stream, data::Split::validation, builtin.block_size);
  } catch (const InvalidArgumentError& e) {
    throw ConfigError(!builtin.tokens.empty() ? "tokens" : "text", what, e.what());
  }
  const nn::GptConfig gc = gpt_config(builtin, stream->vocab_size);
  std::optional<nn::Gpt> gpt;
  try {
    gpt.emplace(gc);
  } catch (const InvalidArgumentError& e) {
    throw ConfigError("model", "gpt", e.what());
  }
  Model model;
  model.module = &*gpt;
  model.name = "GPT " + gc.to_string();
  // Dropout from the batch's "step" and "first_example" (train/model.h) in training, none in
  // evaluation. Without dropout the two losses are one computation: no second recording.
  model.loss = [&g = *gpt](const nn::VarTree& p, const nn::VarTree& batch) { return g.loss(p, batch, /*training=*/true); };
  if (gc.dropout > 0)
    model.eval_loss = [&g = *gpt](const nn::VarTree& p, const nn::VarTree& batch) { return g.loss(p, batch, /*training=*/false); };
  model.from_file = [gc](const Tree& file, const std::map<std::string, std::string>& metadata) {
    nn::check_gpt_metadata(metadata, gc);  // n_head: the shapes do not show it
    return nn::gpt_from_hf(file, gc, DType::f32);
  };
  model.check_model_axis = [&g = *gpt](int m) { g.check_model_axis(m); };
  return train(model, *train_set, *val_set, config, hooks);
}

}  // namespace

void BuiltinModel::validate() const {
  if (name != "mlp" && name != "cnn" && name != "gpt") throw ConfigError("model", name, "unknown model; valid: mlp, cnn, gpt");
  if (name == "gpt") {
    if (!text.empty() && !tokens.empty())
      throw ConfigError("text", text, "--text and --tokens each name the data; give one");
    if (!tokens.empty() && (vocab_size < 1 || vocab_size > 65536))
      throw ConfigError("vocab_size", std::to_string(vocab_size), "a uint16 token file needs a vocabulary of 1..65536 ids");
    if (tokens.empty() && vocab_size != 0 && vocab_size != 256)
      throw ConfigError("vocab_size", std::to_string(vocab_size), "applies to --tokens; text is bytes (256)");
    if (hidden) throw ConfigError("hidden", widths(*hidden), "applies to mlp and cnn; the gpt's sizes are --n-embd and --n-layer");
    try {
      gpt_config(*this, tokens.empty() ? 256 : vocab_size).validate();
    } catch (const InvalidArgumentError& e) {
      throw ConfigError("model", "gpt", e.what());
    }
    return;
  }
  if (!text.empty() || !tokens.empty())
    throw ConfigError(!text.empty() ? "text" : "tokens", !text.empty() ? text : tokens, "applies to --model gpt only");
  const std::vector<int> h = hidden.value_or(std::vector<int>{});
  for (int w : h)
    if (w < 1) throw ConfigError("hidden", widths(h), "layer width " + std::to_string(w) + " must be >= 1");
  if (name == "cnn" && hidden && h.size() != 1)
    throw ConfigError("hidden", h.empty() ? "none" : widths(h), "the cnn has one hidden dense layer; give one width (default 128)");
  if (activation != "relu" && activation != "gelu")
    throw ConfigError("activation", activation, "unknown activation; valid: relu, gelu");
  if (name == "cnn" && activation != "relu")
    throw ConfigError("activation", activation, "the cnn uses relu (fused into its convolutions); valid: relu");
}

TrainReport train(const BuiltinModel& builtin, const TrainConfig& config, const TrainHooks& hooks) {
  builtin.validate();
  if (builtin.name == "gpt") return train_gpt(builtin, config, hooks);
  const data::ArrayDataset train_set = load_split(config, "train");
  const data::ArrayDataset test_set = load_split(config, "test");
  const int classes = train_set.num_classes;
  const std::int64_t features = train_set.images.shape().row_numel();
  if (builtin.name == "cnn") {
    constexpr std::int64_t kSide = 28;
    if (features != kSide * kSide)
      throw ConfigError("data_dir", train_set.name(),
                        "the cnn takes 28x28 images (784 features); this data has " + std::to_string(features));
    const nn::Cnn cnn({.hidden = builtin.hidden ? (*builtin.hidden)[0] : 128, .classes = classes});
    Model model = classifier(
        cnn, [&cnn](const nn::VarTree& p, nn::Var x) { return cnn(p, nn::reshape(x, {x.shape()[0], kSide, kSide, 1})); },
        "CNN conv 32-64, dense " + std::to_string(cnn.config().hidden) + "-" + std::to_string(classes));
    model.check_model_axis = [&cnn](int m) {
      if (cnn.config().hidden % m != 0)
        throw InvalidArgumentError("the cnn's dense width " + std::to_string(cnn.config().hidden) +
                                   " is split over the model axis and " + std::to_string(m) +
                                   " devices do not divide it; valid: widths divisible by " + std::to_string(m));
    };
    return train(model, train_set, test_set, config, hooks);
  }
  nn::MlpConfig mc;
  mc.sizes = {static_cast<int>(features)};
  const std::vector<int> hidden = builtin.hidden.value_or(std::vector<int>{512, 512});
  mc.sizes.insert(mc.sizes.end(), hidden.begin(), hidden.end());
  mc.sizes.push_back(classes);
  mc.activation = nn::parse_activation(builtin.activation);
  const nn::Mlp mlp(mc);
  Model model = classifier(mlp, [&mlp](const nn::VarTree& p, nn::Var x) { return mlp(p, x); }, mlp.describe());
  model.check_model_axis = [&mlp, &hidden](int m) {
    try {
      mlp.check_model_axis(m);
    } catch (const InvalidArgumentError& e) {
      throw ConfigError("hidden", widths(hidden), e.what());
    }
  };
  try {
    return train(model, train_set, test_set, config, hooks);
  } catch (const ConfigError& e) {
    if (e.field() != "model") throw;
    throw ConfigError("hidden", hidden.empty() ? "none" : widths(hidden), e.problem());  // the flag that sized it
  }
}

TrainReport train(const TrainConfig& config, const TrainHooks& hooks) { return train(BuiltinModel{}, config, hooks); }

void save_parameters(const BuiltinModel& model, const std::string& path, const Tree& params) {
  if (model.name != "gpt") {
    io::save_safetensors(path, params);
    return;
  }
  // The sizes from the parameters themselves (wte's rows are the vocabulary).
  const std::int64_t vocab = params.at("wte/embedding").shape()[0];
  nn::save_gpt(path, params, gpt_config(model, vocab));
}

}  // namespace datarax::train
