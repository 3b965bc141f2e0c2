#include "train/setup.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <set>
#include <type_traits>

#include "core/strings.h"
#include "datarax/device_discovery.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/distributed/device_mesh_module.h"
#include "datarax/io/safetensors.h"
#include "datarax/nn/blas.h"
#include "datarax/process_collectives.h"
#include "datarax/data/array_dataset.h"
#include "datarax/nn/matmul_kernel.h"
#include "datarax/optim/schedule.h"
#include "train/eval_batches.h"
#include "train/run_identity.h"

namespace datarax::train::detail {

namespace {

using datarax::detail::join;
using datarax::detail::quoted;

Mesh make_mesh(const TrainConfig& c, const std::string& model) {
  c.validate();
  initialize({.num_cpu_devices = c.devices});
  check_same_on_every_process(c, model);
  check_precision_supported(c);
  nn::use_single_threaded_blas_by_default();
  const distributed::DeviceMeshModule meshes;
  const int M = c.model_parallel;
  const int K = device_count();
  const std::string mesh_text = "data=" + (c.data_parallel ? std::to_string(*c.data_parallel) : std::string("all")) +
                                (M > 1 ? ",model=" + std::to_string(M) : std::string());
  if (!c.data_parallel && K % M != 0)
    throw ConfigError("mesh", mesh_text,
                      "model=" + std::to_string(M) + " does not divide the " + std::to_string(K) +
                          " devices of the job; give data=D with D*" + std::to_string(M) + " <= " + std::to_string(K));
  const long long needed = static_cast<long long>(c.data_parallel.value_or(K / M)) * M;
  if (needed > K)
    throw ConfigError("mesh", mesh_text,
                      "needs " + std::to_string(needed) + " devices; the job has " + std::to_string(K) +
                          " (devices per process x processes)");
  // Tensor parallelism over a hybrid mesh: "model" inside a process where it fits (host-aware).
  const Mesh mesh = M > 1 ? meshes.create_hybrid_mesh(c.data_parallel.value_or(K / M), M)
                          : meshes.create_data_parallel_mesh(c.data_parallel);
  const int n = mesh.axis_size("data");
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

// Which part of each global batch this process loads: the rows of the "data" positions its
// devices hold. Data parallel across processes, that is the process's own part; with a "model"
// axis spanning processes, the processes of one model group load the same rows. Every process
// must hold an equal run of positions, aligned to its length (as DeviceMeshModule's meshes do).
std::pair<int, int> batch_part(const Mesh& mesh) {
  const int axis = mesh.axis_position("data"), n = mesh.axis_size("data");
  std::set<int> mine;
  for (const Device& d : mesh.devices())
    if (d.process_index == process_index()) mine.insert(mesh.coords(d)[static_cast<std::size_t>(axis)]);
  const int held = static_cast<int>(mine.size()), first = *mine.begin();
  if (*mine.rbegin() - first + 1 != held || n % held != 0 || first % held != 0)
    throw ConfigError("mesh", mesh.to_string(),
                      "process " + std::to_string(process_index()) + " holds data positions " + std::to_string(first) +
                          ".." + std::to_string(*mine.rbegin()) + " of " + std::to_string(n) +
                          "; every process must hold one equal, aligned run of the data axis (give each "
                          "process the same number of devices)");
  return {first / held, n / held};
}

// `loaded` checked against what `needs` (the model, the optimizer) makes, `fresh`: the same keys,
// dtypes and shapes. Problems throw ConfigError for `field` = `value`.
void check_tensors(const Tree& loaded, const Tree& fresh, const std::string& needs, const char* field,
                   const std::string& value) {
  auto bad = [&](const std::string& problem) { return ConfigError(field, value, problem); };
  for (const auto& [key, leaf] : fresh) {
    if (!loaded.contains(key)) throw bad("no tensor " + quoted(key) + "; " + needs + " needs " + join(fresh.keys(), ", "));
    const Array& got = loaded.at(key);
    if (got.dtype() != leaf.dtype() || got.shape() != leaf.shape())
      throw bad("tensor " + quoted(key) + " is " + std::string(to_string(got.dtype())) + got.shape().to_string() + "; " +
                needs + " needs " + std::string(to_string(leaf.dtype())) + leaf.shape().to_string());
  }
  for (const auto& [key, leaf] : loaded)
    if (!fresh.contains(key))
      throw bad("tensor " + quoted(key) + " is not one " + needs + " has; expected " + join(fresh.keys(), ", "));
  for (const auto& entry : loaded) {
    const std::string& key = entry.first;
    const Array& leaf = entry.second;  // named: a lambda may not capture a binding (clang 14)
    if (is_floating(leaf.dtype()))
      visit_dtype(leaf.dtype(), [&](auto t) {
        using T = decltype(t);
        if constexpr (std::is_floating_point_v<T>) {
          const std::span<const T> v = leaf.template data<T>();
          const auto it = std::find_if(v.begin(), v.end(), [](T x) { return !std::isfinite(x); });
          if (it != v.end())
            throw bad("tensor " + quoted(key) + " holds " + datarax::detail::number(static_cast<double>(*it)) +
                      " at element " + std::to_string(it - v.begin()) + "; training needs finite numbers");
        }
      });
  }
}

// The initial parameters: the resumed state's, init_path's (through the model's from_file, checked
// against the model) or the seeded initialisation.
Tree initial_params(const TrainConfig& c, const Model& model, const Tree& fresh, const TrainState* resume) {
  if (resume != nullptr) {
    check_tensors(resume->params, fresh, "the model " + model.name, "resume", "(its parameters)");
    return resume->params;
  }
  if (c.init_path.empty()) return fresh;
  Tree loaded;
  try {
    loaded = io::load_safetensors(c.init_path);
    if (model.from_file) loaded = model.from_file(loaded, io::load_safetensors_metadata(c.init_path));
  } catch (const InvalidArgumentError& e) {
    throw ConfigError("init_path", c.init_path, e.what());
  }
  check_tensors(loaded, fresh, "the model " + model.name, "init_path", c.init_path);
  return loaded;
}

// This host's available memory in bytes (MemAvailable), or 0 when unknown.
long double available_memory() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  long double kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "MemAvailable: %Lf kB", &kib) == 1) break;
  std::fclose(f);
  return kib * 1024;
}

// The model's parameters, gradients and optimizer state must fit this host's memory: checked from
// the sizes (in floating point, so that no product overflows) before anything is allocated.
void check_memory(const TrainConfig& c, const Model& model, int local_devices, int data_size) {
  const long double params = static_cast<long double>(model.module->num_params());
  const long double state = c.optimizer == "sgd" ? (c.momentum ? 4 : 0) : 8;  // bytes per parameter
  // The whole initial parameters once, then per device its blocks (1/M of them) placed, its
  // parameters, gradients and optimizer state — 1/N of each from the ZeRO stage that shards it.
  const int stage = c.zero_stage.value();  // resolved by Setup
  const long double M = c.model_parallel, N = stage >= 1 ? data_size : 1;
  const long double per_device = params / M * (4 + (stage >= 3 ? 4 / N : 4) + (stage >= 2 ? 4 / N : 4) + state / N);
  const long double bytes = 4 * params + local_devices * per_device;
  const long double available = available_memory();
  if (available > 0 && bytes > available) {
    char text[192];
    std::snprintf(text, sizeof text,
                  "%.3Lg parameters need about %.3Lg GiB on %d devices of this host; it has %.3Lg GiB available",
                  params, bytes / (1LL << 30), local_devices, available / (1LL << 30));
    throw ConfigError("model", model.name, text);
  }
}

// "data 2 x model 2 (tensor-parallel layers: column, row, none), ZeRO stage 3 (FSDP)".
// `asked`: the stage the caller set (unset: the default chose c's).
std::string layout_text(const TrainConfig& c, const std::optional<int>& asked, std::size_t split, std::size_t tensors,
                        int data_size, nn::Precision precision) {
  std::string s = "data " + std::to_string(data_size);
  if (c.model_parallel > 1)
    s += " x model " + std::to_string(c.model_parallel) + " (tensor-parallel: " + std::to_string(split) + " of " +
         std::to_string(tensors) + " parameter tensors split)";
  static const char* const stages[] = {"replicated", "ZeRO stage 1 (optimizer state sharded)",
                                       "ZeRO stage 2 (optimizer state and gradients sharded)",
                                       "ZeRO stage 3 (FSDP: parameters, gradients and optimizer state sharded)"};
  if (asked && *asked > 0 && data_size == 1)
    return s + ", replicated (ZeRO stage " + std::to_string(*asked) + " asked for; a data axis of 1 shards nothing)";
  const int stage = c.zero_stage.value();
  s += ", " + std::string(stages[stage]) + (!asked && stage == 1 ? " by default" : "");
  if (precision == nn::Precision::bf16) {
    const nn::MatmulKernel kernel = nn::matmul_kernel(nn::Precision::bf16);
    s += nn::rounds_to_bf16(kernel)
             ? "; bf16 matrix products by " + std::string(nn::to_string(kernel)) + " (f32 parameters, gradients, optimizer)"
         : nn::matmul_kernel_choice(nn::Precision::bf16).forced ? "; bf16 asked, f32 matrix products (forced)"
                                                                 : "; bf16 asked, f32 matrix products (no bf16 kernel is faster on this CPU)";
  }
  return s;
}

// Chooses the kernel of the run's precision on the products of the model's weight matrices at
// this batch (forward, input gradient, weight gradient of each, as [in, out] with every leading
// dimension of a kernel counted as "in": a conv's HWIO kernel is the im2col product's);
// returns the choice's reason.
std::string choose_kernel(const Tree& local_params, nn::Precision precision, std::int64_t batch) {
  // Measured once per process and precision: the first run's choice holds for every later run in
  // the process, so that two runs of one program (a layout against one device, a resume against
  // the run it continues) round alike, whatever the machine's load did to a later timing.
  static std::mutex mutex;
  static std::map<nn::Precision, std::string> chosen;
  const std::lock_guard<std::mutex> lock(mutex);
  if (const auto it = chosen.find(precision); it != chosen.end())
    return std::string(nn::to_string(nn::matmul_kernel(precision))) + ", as chosen by this process's first run (" + it->second + ")";
  std::vector<nn::MatmulShape> shapes;
  for (const auto& [key, leaf] : local_params) {
    if (leaf.rank() < 2) continue;
    const std::int64_t out = leaf.shape()[leaf.rank() - 1], in = leaf.numel() / std::max<std::int64_t>(out, 1);
    if (in < 1 || out < 1) continue;
    shapes.push_back({false, false, batch, out, in});
    shapes.push_back({false, true, batch, in, out});
    shapes.push_back({true, false, in, out, batch});
  }
  if (shapes.empty()) shapes.push_back({false, false, batch, 64, 64});
  std::string reason = nn::choose_matmul_kernel(precision, shapes).reason;
  if (process_count() > 1) {
    // Every process runs process 0's choice: the processes' products then round alike (a layout's
    // results must not depend on which kernel each host timed fastest).
    const std::string mine(nn::to_string(nn::matmul_kernel(precision)));
    const std::vector<std::string> all = process_all_gather(mine, "train: agreeing on the matrix product kernel");
    if (all[0] != mine) {
      nn::set_matmul_kernel(precision, nn::parse_matmul_kernel(all[0]));
      reason = all[0] + ", process 0's choice (this process measured " + mine + " fastest: " + reason + ")";
    }
  }
  chosen[precision] = reason;
  return reason;
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

Setup::Setup(const Model& m, const data::Dataset& train_data, const data::Dataset& test_data, const TrainConfig& c,
             const TrainState* resume)
    : model(m),
      train_set(train_data),
      test_set(test_data),
      config(c),
      mesh(make_mesh(c, m.name)),
      data_size(mesh.axis_size("data")),
      model_size(c.model_parallel),
      batch_sharding(distributed::DataParallelModule().create_data_parallel_sharding(mesh)) {
  if (model.module == nullptr) throw ConfigError("model", "(none)", "train::Model.module is null; give the model's module");
  if (!model.loss) throw ConfigError("model", model.name, "train::Model.loss is empty; give the model's loss function");
  precision = nn::parse_precision(c.precision);
  check_same_data_on_every_process(train_set, test_set);
  for (const data::Field& f : train_set.fields())
    if (f.name == "step" || f.name == "first_example")
      throw ConfigError("data_dir", train_set.name(),
                        "the data set has a field named " + quoted(f.name) +
                            "; the trainer's batch adds \"step\" and \"first_example\" (train/model.h): rename it");
  const std::int64_t examples = train_set.size();
  // The default ZeRO stage (TrainConfig::zero_stage): 1 on a data axis of several devices of this
  // one process without gradient buckets — the same bits as replicated, in less memory — else 0.
  if (!config.zero_stage)
    config.zero_stage = data_size > 1 && process_count() == 1 && c.gradient_bucket_bytes == 0 ? 1 : 0;
  if (test_set.size() == 0)
    throw ConfigError("data_dir", test_set.name(), "the test split has no examples; the epochs' test metrics need some");
  if (c.batch_size > examples)
    throw ConfigError("batch_size", std::to_string(c.batch_size),
                      "larger than the " + std::to_string(examples) + " training examples");
  const auto [part, parts] = batch_part(mesh);
  try {
    loader = std::make_unique<data::Loader>(train_set, data::LoaderOptions{.global_batch = c.batch_size,
                                                                            .seed = c.seed,
                                                                            .shuffle = c.shuffle,
                                                                            .drop_last = c.drop_last,
                                                                            .part_index = part,
                                                                            .part_count = parts});
  } catch (const InvalidArgumentError& e) {
    throw ConfigError("data_dir", train_set.name(), e.what());
  }
  if (model_size > 1 && model.check_model_axis) {
    try {
      model.check_model_axis(model_size);
    } catch (const ConfigError&) {
      throw;
    } catch (const InvalidArgumentError& e) {
      throw ConfigError("model_parallel", std::to_string(model_size), e.what());
    }
  }
  check_memory(config, model,
               static_cast<int>(std::count_if(mesh.devices().begin(), mesh.devices().end(),
                                              [](const Device& d) { return d.process_index == process_index(); })),
               data_size);
  const std::int64_t steps_per_epoch = loader->steps_per_epoch();
  const std::int64_t total_steps = std::min<std::int64_t>(c.steps.value_or(INT64_MAX), steps_per_epoch * c.epochs);
  optimizer = make_optimizer(c, total_steps);
  must_match = detail::must_match(c, model.name, train_set, test_set, total_steps);
  const Tree fresh = model.module->init(c.seed);
  if (resume != nullptr) {
    check_resumable(must_match, resume->must_match);
    check_tensors(resume->opt_state, optimizer->init(fresh), "the optimizer " + c.optimizer, "resume",
                  "(its optimizer state)");
    // The manifest's counters against this run's data order (load_checkpoint checked them against
    // each other).
    if (resume->steps_per_epoch != steps_per_epoch)
      throw ConfigError("resume", "(its manifest)",
                        "records " + std::to_string(resume->steps_per_epoch) + " steps per epoch; this run's data order has " +
                            std::to_string(steps_per_epoch));
    if (resume->epoch_count > static_cast<double>(resume->step_in_epoch) * static_cast<double>(c.batch_size) ||
        (c.drop_last && resume->epoch_count != static_cast<double>(resume->step_in_epoch) * static_cast<double>(c.batch_size)))
      throw ConfigError("resume", "(its manifest)",
                        "its epoch's running count of " + datarax::detail::number(resume->epoch_count) + " examples does not fit " +
                            std::to_string(resume->step_in_epoch) + " steps of " + std::to_string(c.batch_size));
    if (optim::step_count(resume->opt_state) != resume->step)
      throw ConfigError("resume", "(its optimizer state)",
                        "the optimizer has made " + std::to_string(optim::step_count(resume->opt_state)) +
                            " updates but the state is after step " + std::to_string(resume->step));
  }
  // The parameters' layout: the model's sharding specs over the axes this mesh has (on a mesh
  // without "model" a tensor-parallel spec is simply whole).
  for (const nn::ParamSpec& spec : model.module->param_specs()) {
    const std::vector<std::string> axes = spec.sharding.mesh_axes();
    if (axes.empty()) continue;
    const bool all_here = std::all_of(axes.begin(), axes.end(), [&](const std::string& a) { return mesh.has_axis(a); });
    if (!all_here) continue;
    if (std::any_of(axes.begin(), axes.end(), [](const std::string& a) { return a != "model"; }))
      throw ConfigError("model", model.name,
                        "parameter \"" + spec.key + "\" is declared with sharding " + spec.sharding.to_string() +
                            "; the trainer splits parameters over \"model\" only (ZeRO shards over \"data\" by itself)");
    rules.add(spec.key, spec.sharding);
    split.push_back(spec.key);
    for (int d = 0; d < spec.sharding.size(); ++d)
      if (!spec.sharding.axes_of(d).empty()) split_dims[spec.key] = d;
  }
  // Every device's blocks of the parameters (and of a resumed optimizer state), by those rules;
  // what ZeRO shards over "data", each device's Step takes from its blocks.
  const distributed::DataParallelModule dp;
  try {
    params = dp.shard_model_state(initial_params(c, model, fresh, resume), mesh, rules);
  } catch (const ConfigError&) {
    throw;
  } catch (const InvalidArgumentError& e) {
    throw ConfigError("model_parallel", std::to_string(model_size), e.what());
  }
  if (resume != nullptr) {
    for (const auto& [key, leaf] : resume->opt_state)
      if (const auto slash = key.find('/'); slash != std::string::npos && !resume_opt.count(key.substr(0, slash)))
        resume_opt.emplace(key.substr(0, slash), dp.shard_model_state(resume->opt_state.subtree(key.substr(0, slash)), mesh, rules));
    resume_count = resume->opt_state.at("count");
  }
  const int data_axis = mesh.axis_position("data");
  for (const Device& d : mesh.devices()) {
    if (d.process_index != process_index()) continue;
    local.push_back(d);
    data_rank.push_back(mesh.coords(d)[static_cast<std::size_t>(data_axis)]);
  }
  local_batch = c.batch_size / data_size;
  for (const int p : data_rank) first_example.push_back(Array::scalar<std::int64_t>(p * local_batch));
  eval_batches.resize(static_cast<std::size_t>(data_size));
  for (const int p : data_rank)
    if (eval_batches[static_cast<std::size_t>(p)].empty())
      eval_batches[static_cast<std::size_t>(p)] =
          eval_batches_of(test_set, p, data_size, std::max<std::int64_t>(local_batch, 1), eval_step);
  const std::string kernel = choose_kernel(params.local_tree(local.front()), precision, std::max<std::int64_t>(local_batch, 1));
  layout = layout_of(config, mesh);
  info = {mesh.size(),
          mesh.to_string(),
          model.module->num_params(),
          model.name,
          static_cast<bool>(model.correct),
          train_set.name() + " " + std::to_string(examples) + " train, " + test_set.name() + " " +
              std::to_string(test_set.size()) + " test",
          steps_per_epoch,
          total_steps,
          layout_text(config, c.zero_stage, split.size(), model.module->param_specs().size(), data_size, precision),
          {},
          kernel};
}

}  // namespace datarax::train::detail
