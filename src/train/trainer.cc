#include "datarax/train/trainer.h"

#include <memory>

#include "core/strings.h"
#include "datarax/data/mnist.h"
#include "datarax/nn/models/cnn.h"
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

}  // namespace

void BuiltinModel::validate() const {
  if (name != "mlp" && name != "cnn") throw ConfigError("model", name, "unknown model; valid: mlp, cnn");
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
  return train(model, train_set, test_set, config, hooks);
}

TrainReport train(const TrainConfig& config, const TrainHooks& hooks) { return train(BuiltinModel{}, config, hooks); }

}  // namespace datarax::train
