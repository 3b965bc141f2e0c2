#include "datarax/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <mutex>

#include "core/strings.h"
#include "datarax/collectives.h"
#include "datarax/data/loader.h"
#include "datarax/data/mnist.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/distributed/device_mesh_module.h"
#include "datarax/distributed/distributed_metrics_module.h"
#include "datarax/io/safetensors.h"
#include "datarax/nn/blas.h"
#include "datarax/nn/mlp.h"
#include "datarax/optim/clip.h"
#include "datarax/optim/optimizer.h"
#include "datarax/optim/schedule.h"
#include "datarax/runtime.h"
#include "datarax/spmd.h"
#include "train/sharded_optimizer_step.h"

namespace datarax::train {

namespace {

using Clock = std::chrono::steady_clock;
using distributed::DataParallelModule;
using distributed::DeviceMeshModule;
using distributed::DistributedMetricsModule;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

nn::MlpConfig model_config(const TrainConfig& c, std::int64_t features, int classes) {
  nn::MlpConfig m;
  m.sizes.push_back(static_cast<int>(features));
  m.sizes.insert(m.sizes.end(), c.hidden.begin(), c.hidden.end());
  m.sizes.push_back(classes);
  m.activation = nn::parse_activation(c.activation);
  return m;
}

std::string model_name(const nn::MlpConfig& m) {
  return "MLP " + datarax::detail::join(m.sizes, "-", [](int s) { return std::to_string(s); }) + " (" +
         std::string(nn::to_string(m.activation)) + ")";
}

// The initial parameters: from --init (checked against the model) or the seeded initialisation.
Tree initial_params(const TrainConfig& c, const nn::MlpConfig& model) {
  Tree fresh = nn::mlp_init(model, c.seed);
  if (c.init_path.empty()) return fresh;
  Tree loaded = load_safetensors(c.init_path);
  for (const auto& [key, leaf] : fresh) {
    if (!loaded.contains(key))
      throw InvalidArgumentError("--init " + c.init_path + ": no tensor " + datarax::detail::quoted(key) +
                                 "; the model " + model_name(model) + " needs " + datarax::detail::join(fresh.keys(), ", "));
    const Array& got = loaded.at(key);
    if (got.dtype() != leaf.dtype() || got.shape() != leaf.shape())
      throw InvalidArgumentError("--init " + c.init_path + ": tensor " + datarax::detail::quoted(key) + " is " +
                                 std::string(to_string(got.dtype())) + got.shape().to_string() + "; the model needs " +
                                 std::string(to_string(leaf.dtype())) + leaf.shape().to_string());
  }
  for (const auto& [key, leaf] : loaded)
    if (!fresh.contains(key))
      throw InvalidArgumentError("--init " + c.init_path + ": tensor " + datarax::detail::quoted(key) +
                                 " is not a parameter of " + model_name(model) + "; expected " +
                                 datarax::detail::join(fresh.keys(), ", "));
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

// What one device keeps across steps: its replica of the parameters and optimizer state, its
// gradient buffers and the model's workspace.
struct DeviceState {
  Tree params;
  Tree opt_state;  // replicated mode: the whole optimizer state
  Tree grads;
  std::unique_ptr<nn::Mlp> mlp;
  std::unique_ptr<detail::ShardedOptimizerStep> sharded;  // --shard-optimizer-state
  Array metrics = Array::zeros({2}, DType::f64);          // the step's loss and correct count
};

}  // namespace

TrainReport train(const TrainConfig& config, TrainObserver* observer) {
  config.validate();
  initialize({.num_cpu_devices = config.devices});
  nn::use_single_threaded_blas_by_default();
  // Under mpirun every process trains; process 0 alone reports and writes files.
  TrainObserver quiet;
  TrainObserver& out = observer && process_index() == 0 ? *observer : quiet;

  // Devices, mesh, sharding.
  DeviceMeshModule mesh_module;
  DataParallelModule dp_module;
  DistributedMetricsModule metrics_module;
  const Mesh mesh = mesh_module.create_data_parallel_mesh(config.data_parallel);
  const NamedSharding sharding = dp_module.create_data_parallel_sharding(mesh);
  const int n = mesh.size();
  if (config.batch_size % n != 0)
    throw InvalidArgumentError("--batch-size " + std::to_string(config.batch_size) +
                               " is not divisible by the data axis (" + std::to_string(n) +
                               " devices); use a multiple of " + std::to_string(n));

  // Data.
  const std::string dir = config.data_dir.empty() ? kDefaultFashionMnistDir : config.data_dir;
  const Dataset train_set = load_mnist(dir, "train");
  const Dataset test_set = load_mnist(dir, "test");
  if (config.batch_size > train_set.images.shape()[0])
    throw InvalidArgumentError("--batch-size " + std::to_string(config.batch_size) + " is larger than the " +
                               std::to_string(train_set.images.shape()[0]) + " training examples");
  Loader loader(train_set, {.global_batch = config.batch_size,
                            .seed = config.seed,
                            .shuffle = config.shuffle,
                            .drop_last = config.drop_last,
                            .process_index = process_index(),
                            .process_count = process_count()});

  // Model, optimizer, state: placed on every device, each device its own copy.
  const nn::MlpConfig model = model_config(config, train_set.images.shape()[1], 10);
  const std::int64_t steps_per_epoch = loader.steps_per_epoch();
  const std::int64_t total_steps =
      std::min<std::int64_t>(config.steps.value_or(INT64_MAX), steps_per_epoch * config.epochs);
  const auto optimizer = make_optimizer(config, total_steps);
  const Tree params = initial_params(config, model);
  Tree state = params.with_prefix("params");
  for (const auto& [key, leaf] : optimizer->init(params)) state.set("opt_state/" + key, leaf);
  const ShardedTree placed_state = dp_module.shard_model_state(state, mesh);

  const std::int64_t local_batch = config.batch_size / n;
  // Indexed by position on the data axis; only this process's devices have state here.
  std::vector<DeviceState> devices(static_cast<std::size_t>(n));
  auto is_mine = [&](int i) { return mesh.devices()[static_cast<std::size_t>(i)].process_index == process_index(); };
  int host = -1;  // the first device of this process: it also does this process's host work
  for (int i = 0; i < n; ++i) {
    if (!is_mine(i)) continue;
    if (host < 0) host = i;
    const Tree local = placed_state.local_tree(mesh.devices()[static_cast<std::size_t>(i)]);
    DeviceState& d = devices[static_cast<std::size_t>(i)];
    d.params = local.subtree("params");
    d.opt_state = local.subtree("opt_state");
    d.mlp = std::make_unique<nn::Mlp>(model, std::max<std::int64_t>(local_batch, 1));
    if (config.shard_optimizer_state) {
      d.sharded = std::make_unique<detail::ShardedOptimizerStep>(*optimizer, d.params, d.grads, i, n);
      d.opt_state = Tree();  // each device keeps only its slice's state, inside `sharded`
    }
  }
  if (host < 0)
    throw InvalidArgumentError("train: process " + std::to_string(process_index()) + " has no device in " +
                               mesh.to_string() + "; every process of the job trains on its devices");
  // A device's position on the (one-axis) data mesh, without allocating.
  auto device_index = [&](const Device& dev) {
    return static_cast<std::size_t>(std::find(mesh.devices().begin(), mesh.devices().end(), dev) -
                                    mesh.devices().begin());
  };

  TrainReport report;
  report.info = {n,
                 mesh.to_string(),
                 nn::num_params(model),
                 model_name(model),
                 train_set.name + " " + std::to_string(train_set.images.shape()[0]) + " train, " +
                     test_set.name + " " + std::to_string(test_set.images.shape()[0]) + " test",
                 steps_per_epoch,
                 total_steps};
  out.on_start(report.info);

  const Clock::time_point start = Clock::now();
  Tree batch;
  std::vector<Tree> local_batches(static_cast<std::size_t>(n));  // each device's views of `batch`
  const void* sharded_from = nullptr;
  std::int64_t step = 0;
  Clock::time_point log_start = Clock::now();
  std::int64_t log_samples = 0;
  report.steps.reserve(static_cast<std::size_t>(total_steps));

  for (int epoch = 1; epoch <= config.epochs && step < total_steps; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    loader.start_epoch(epoch - 1);
    double loss_sum = 0, correct_sum = 0, count_sum = 0;
    std::int64_t in_epoch = 0;
    // Written by the first device between barriers, read by all after them.
    bool have_batch = false;
    double count = 0;
    // One SPMD launch per epoch: the devices run every step of it in a loop, and the process's
    // first device also does the host's part (the next batch, the metrics record, the observer)
    // while the others wait at the barrier. Nothing in the loop allocates once the buffers exist.
    // Under mpirun each process's loader gives its slice of the same global batch, so every
    // process agrees on whether there is a next step.
    run_spmd(mesh, [&](const Device& dev) {
      const std::size_t i = device_index(dev);
      DeviceState& d = devices[i];
      while (true) {
        if (static_cast<int>(i) == host) {
          have_batch = step < total_steps && loader.next(batch);
          if (have_batch) {
            ++step;
            ++in_epoch;
            count = batch.at("count").item<float>();  // real examples in the global batch
            // The loader refills the same buffers every step and shard_batch's shards are views of
            // them: the batch is sharded once, and again only if the loader replaced a buffer.
            if (batch.at("inputs").raw() != sharded_from) {
              Tree per_example = batch;
              per_example.erase("count");
              const ShardedTree sharded_batch = dp_module.shard_batch(per_example, sharding);
              for (int k = 0; k < n; ++k)
                if (is_mine(k))
                  local_batches[static_cast<std::size_t>(k)] =
                    sharded_batch.local_tree(mesh.devices()[static_cast<std::size_t>(k)]);
              sharded_from = batch.at("inputs").raw();
            }
          }
        }
        barrier("data");  // the batch is ready, or the epoch is over
        if (!have_batch) break;

        // The data-parallel step. Each device's loss is divided by count / n, so that the mean
        // over devices is the mean over the global batch's real examples (exact also when the
        // last batch is padded).
        const Tree& local = local_batches[i];
        std::int64_t correct = 0;
        const double loss = d.mlp->loss_and_grad(d.params, local.at("inputs"), local.at("labels"),
                                                 local.at("mask"), count / n, d.grads, &correct);
        if (d.sharded) {
          d.sharded->step(config.clip_norm, "data");
        } else {
          dp_module.all_reduce_gradients_in_place(d.grads, "mean", "data");
          if (config.clip_norm) optim::clip_by_global_norm(d.grads, *config.clip_norm);
          optimizer->update(d.grads, d.opt_state, d.params);
          optim::apply_updates(d.params, d.grads);
        }
        // The step's metrics: mean loss and total correct over the devices, in a fixed buffer.
        // Every device has finished with the batch once this returns.
        std::span<double> m = d.metrics.data<double>();
        m[0] = loss;
        m[1] = static_cast<double>(correct);
        all_reduce_in_place(d.metrics, ReduceOp::sum, "data");
        if (static_cast<int>(i) != host) continue;

        StepMetrics sm;
        sm.step = step;
        sm.loss = m[0] / n;
        sm.accuracy = m[1] / count;
        log_samples += static_cast<std::int64_t>(count);
        const double dt = seconds_since(log_start);
        sm.samples_per_s = dt > 0 ? static_cast<double>(log_samples) / dt : 0;
        if (step == 1 || step % config.log_every == 0) {
          log_start = Clock::now();
          log_samples = 0;
        }
        loss_sum += sm.loss * count;
        correct_sum += sm.accuracy * count;
        count_sum += count;
        report.steps.push_back(sm);
        out.on_step(sm, epoch, in_epoch);
      }
    });
    if (in_epoch < steps_per_epoch) break;  // stopped by --steps inside the epoch: no epoch row

    const double train_seconds = seconds_since(epoch_start);
    // Test metrics: every device evaluates a slice of the test set; the totals are summed.
    const std::int64_t n_test = test_set.images.shape()[0];
    std::vector<Tree> totals(static_cast<std::size_t>(n));
    run_spmd(mesh, [&](const Device& dev) {
      const std::size_t i = device_index(dev);
      const std::int64_t lo = n_test * static_cast<std::int64_t>(i) / n;
      const std::int64_t hi = n_test * static_cast<std::int64_t>(i + 1) / n;
      const nn::EvalResult r = devices[i].mlp->evaluate(devices[i].params, test_set.images.slice(lo, hi),
                                                        test_set.labels.slice(lo, hi));
      totals[i] = metrics_module.reduce_custom(Tree{{"loss_sum", Array::scalar<double>(r.loss_sum)},
                                                    {"correct", Array::scalar<std::int64_t>(r.correct)},
                                                    {"count", Array::scalar<std::int64_t>(r.count)}},
                                               {{"loss_sum", "sum"}, {"correct", "sum"}, {"count", "sum"}}, "data");
    });
    EpochMetrics em;
    em.epoch = epoch;
    em.train_loss = loss_sum / count_sum;
    em.train_accuracy = correct_sum / count_sum;
    const Tree& total = totals[static_cast<std::size_t>(host)];
    const double test_count = static_cast<double>(total.at("count").item<std::int64_t>());
    em.test_loss = total.at("loss_sum").item<double>() / test_count;
    em.test_accuracy = static_cast<double>(total.at("correct").item<std::int64_t>()) / test_count;
    em.seconds = seconds_since(epoch_start);
    em.samples_per_s = count_sum / train_seconds;
    report.epochs.push_back(em);
    out.on_epoch(em);
  }

  report.params = devices[static_cast<std::size_t>(host)].params;
  report.seconds = seconds_since(start);
  if (!config.save_path.empty() && process_index() == 0)
    save_safetensors(config.save_path, report.params,
                     {{"model", model_name(model)}, {"steps", std::to_string(step)}, {"format", "datarax"}});
  out.on_finish(report);
  return report;
}

}  // namespace datarax::train
