#include "train/setup.h"

#include <algorithm>

#include "core/strings.h"
#include "datarax/device_discovery.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/distributed/device_mesh_module.h"
#include "datarax/io/safetensors.h"
#include "datarax/nn/blas.h"
#include "datarax/optim/schedule.h"

namespace datarax::train::detail {

namespace {

using datarax::detail::join;
using datarax::detail::quoted;

Mesh make_mesh(const TrainConfig& c) {
  c.validate();
  initialize({.num_cpu_devices = c.devices});
  nn::use_single_threaded_blas_by_default();
  const Mesh mesh = distributed::DeviceMeshModule().create_data_parallel_mesh(c.data_parallel);
  const int n = mesh.size();
  if (c.batch_size % n != 0)
    throw ConfigError("batch_size", std::to_string(c.batch_size),
                      "not divisible by the data axis (" + std::to_string(n) + " devices); use a multiple of " +
                          std::to_string(n));
  if (std::none_of(mesh.devices().begin(), mesh.devices().end(),
                   [](const Device& d) { return d.process_index == process_index(); }))
    throw ConfigError("data_parallel", std::to_string(n),
                      "process " + std::to_string(process_index()) + " has no device in " + mesh.to_string() +
                          "; every process of the job trains on its devices");
  return mesh;
}

data::Dataset load_split(const TrainConfig& c, const char* split) {
  const std::string dir = c.data_dir.empty() ? data::kDefaultFashionMnistDir : c.data_dir;
  try {
    return data::load_mnist(dir, split);
  } catch (const InvalidArgumentError& e) {
    throw ConfigError("data_dir", dir, e.what());
  }
}

nn::MlpConfig model_config(const TrainConfig& c, std::int64_t features, int classes) {
  nn::MlpConfig m;
  m.sizes.push_back(static_cast<int>(features));
  m.sizes.insert(m.sizes.end(), c.hidden.begin(), c.hidden.end());
  m.sizes.push_back(classes);
  m.activation = nn::parse_activation(c.activation);
  return m;
}

std::string model_name(const nn::MlpConfig& m) {
  return "MLP " + join(m.sizes, "-", [](int s) { return std::to_string(s); }) + " (" +
         std::string(nn::to_string(m.activation)) + ")";
}

// The initial parameters: from init_path (checked against the model) or the seeded initialisation.
Tree initial_params(const TrainConfig& c, const nn::MlpConfig& model) {
  Tree fresh = nn::mlp_init(model, c.seed);
  if (c.init_path.empty()) return fresh;
  auto bad = [&](const std::string& problem) { return ConfigError("init_path", c.init_path, problem); };
  Tree loaded;
  try {
    loaded = io::load_safetensors(c.init_path);
  } catch (const InvalidArgumentError& e) {
    throw bad(e.what());
  }
  for (const auto& [key, leaf] : fresh) {
    if (!loaded.contains(key))
      throw bad("no tensor " + quoted(key) + "; the model " + model_name(model) + " needs " + join(fresh.keys(), ", "));
    const Array& got = loaded.at(key);
    if (got.dtype() != leaf.dtype() || got.shape() != leaf.shape())
      throw bad("tensor " + quoted(key) + " is " + std::string(to_string(got.dtype())) + got.shape().to_string() +
                "; the model needs " + std::string(to_string(leaf.dtype())) + leaf.shape().to_string());
  }
  for (const auto& [key, leaf] : loaded)
    if (!fresh.contains(key))
      throw bad("tensor " + quoted(key) + " is not a parameter of " + model_name(model) + "; expected " +
                join(fresh.keys(), ", "));
  return loaded;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& c, std::int64_t total_steps) {
  optim::OptimizerOptions o;
  o.learning_rate = c.schedule == "constant"
                        ? optim::constant_schedule(c.lr)
                        : optim::warmup_cosine_decay(c.lr, c.warmup_steps, std::max(total_steps, c.warmup_steps + 1));
  o.momentum = c.momentum.value_or(0.0);
  o.nesterov = c.nesterov;
  o.weight_decay = c.weight_decay;
  return optim::make_optimizer(c.optimizer, o);
}

}  // namespace

Setup::Setup(const TrainConfig& c)
    : config(c),
      mesh(make_mesh(c)),
      batch_sharding(distributed::DataParallelModule().create_data_parallel_sharding(mesh)),
      train_set(load_split(c, "train")),
      test_set(load_split(c, "test")) {
  const std::int64_t examples = train_set.images.shape()[0];
  if (c.batch_size > examples)
    throw ConfigError("batch_size", std::to_string(c.batch_size),
                      "larger than the " + std::to_string(examples) + " training examples");
  loader = std::make_unique<data::Loader>(train_set, data::LoaderOptions{.global_batch = c.batch_size,
                                                                          .seed = c.seed,
                                                                          .shuffle = c.shuffle,
                                                                          .drop_last = c.drop_last,
                                                                          .process_index = process_index(),
                                                                          .process_count = process_count()});
  model = model_config(c, train_set.images.shape()[1], train_set.num_classes);
  const std::int64_t steps_per_epoch = loader->steps_per_epoch();
  const std::int64_t total_steps = std::min<std::int64_t>(c.steps.value_or(INT64_MAX), steps_per_epoch * c.epochs);
  optimizer = make_optimizer(c, total_steps);
  params = distributed::DataParallelModule().shard_model_state(initial_params(c, model), mesh);
  for (int i = 0; i < mesh.size(); ++i) {
    const Device& d = mesh.devices()[static_cast<std::size_t>(i)];
    if (d.process_index != process_index()) continue;
    local.push_back(d);
    data_rank.push_back(i);  // a 1-D mesh: the position is the data rank
  }
  local_batch = c.batch_size / mesh.size();
  info = {mesh.size(),
          mesh.to_string(),
          nn::num_params(model),
          model_name(model),
          train_set.name + " " + std::to_string(examples) + " train, " + test_set.name + " " +
              std::to_string(test_set.images.shape()[0]) + " test",
          train_set.num_classes,
          steps_per_epoch,
          total_steps};
}

}  // namespace datarax::train::detail
