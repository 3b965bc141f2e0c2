// The trainer: any model (train/model.h) on any data set (data/dataset.h) over a ("data") or
// ("data", "model") mesh of devices.
//
// Two pieces (docs/architecture.md): a host loop on the calling thread — it loads each global
// batch (this process's slice) and shards it over "data" (views, no copy) one step ahead of the
// devices, keeps the epoch schedule, takes checkpoints and stop requests between steps and reports
// to the observer — and a per-device Step that runs inside one SPMD launch: the model's loss,
// recorded once and replayed with its gradients on its part of the parameters (tensor-parallel
// over "model"), the gradient reduction over "data" in flat units, clipping and the optimizer
// update of what it owns (every parameter, or its ZeRO slices).
// Step metrics and the epoch's test metrics are reduced across devices by
// DistributedMetricsModule. No step allocates once the buffers exist. docs/model_parallel.md
// explains the layouts.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "datarax/data/dataset.h"
#include "datarax/phase_timer.h"
#include "datarax/train/model.h"
#include "datarax/train/train_config.h"
#include "datarax/tree.h"

namespace datarax::train {

struct StepMetrics {
  std::int64_t step = 0;      // counts from 1
  double loss = 0;            // mean loss of the step's global batch, before its update
  double accuracy = 0;
  double samples_per_s = 0;   // over the steps since the last logged one (log_every)
  // When this process's devices finished the step (the host may learn of several at once, later).
  std::chrono::steady_clock::time_point finished_at;
  // With TrainConfig::time_phases: the seconds the first device of this process spent in each
  // phase (datarax/phase_timer.h) since its previous step ended, indexed by Phase; they add up to
  // the time between the ends of its two steps. Zeros otherwise.
  std::array<double, kPhaseCount> phase_seconds{};
};

struct EpochMetrics {
  int epoch = 0;              // counts from 1
  double train_loss = 0, train_accuracy = 0;  // means over the epoch's steps' examples
  double test_loss = 0, test_accuracy = 0;
  double samples_per_s = 0;
  double seconds = 0;
};

// Bytes one device holds for the model, read from its buffers.
struct DeviceBytes {
  std::int64_t params = 0, grads = 0, optimizer = 0;
  std::int64_t in_flight = 0;  // ZeRO 2/3: the slots of whole gradients (and gathered parameters) of the groups in use
  std::int64_t total() const { return params + grads + optimizer + in_flight; }
};

struct TrainInfo {
  int devices = 0;
  std::string mesh;           // e.g. "Mesh(data=2; cpu:0..1)"
  std::int64_t parameters = 0;
  std::string model;          // Model::name, e.g. "MLP 784-512-512-10 (relu)"
  bool accuracy = true;       // the model reports an accuracy (Model::correct); else the metrics' accuracies are 0
  std::string dataset;        // e.g. "fashion-mnist/train 60000 train, fashion-mnist/test 10000 test"
  std::int64_t steps_per_epoch = 0;
  std::int64_t total_steps = 0;
  // e.g. "data 2 x model 2 (tensor-parallel layers: column, row, none), ZeRO stage 3 (FSDP)"
  std::string layout;
  DeviceBytes bytes_per_device;  // the first device of this process
  // The kernel of the run's matrix products on this CPU and why (nn/matmul_kernel.h), e.g.
  // "avx512 measured fastest (152 GFLOP/s; openblas 32 GFLOP/s)".
  std::string matmul_kernel;
};

// The training state between two steps, as whole (unsharded) tensors: what a checkpoint holds
// (train/checkpoint.h), and what a run resumes from (TrainHooks::resume). Nothing in it depends on
// the device or process count, so a state resumes on any layout.
struct TrainState {
  // The run it belongs to: an id given at a fresh start and kept by every resume (CheckpointDir,
  // train/checkpoint_dir.h); "" until a checkpoint folder names it.
  std::string run;
  std::int64_t step = 0;      // steps done
  int epoch = 1;              // the epoch of the next step (from 1)
  std::int64_t step_in_epoch = 0;  // its steps done: the data order resumes at step_in_epoch x batch
  std::int64_t steps_per_epoch = 0;  // of the run's data order (a check: step = (epoch - 1) x this + step_in_epoch)
  // The epoch's running totals so far (its row's train loss and accuracy): sum of loss x count,
  // correct predictions, real examples.
  double epoch_loss = 0, epoch_correct = 0, epoch_count = 0;
  Tree params;                // the model's keys: "dense_0/kernel", ...
  Tree opt_state;             // the optimizer's state (optim/optimizer.h: "count", "mu/...", ...)
  // What the state belongs to, as name -> text: `must_match` holds what a resumed run must share
  // (the data, the model, the optimizer and its schedule, the data order: each named like its
  // TrainConfig field, the data as "data"); `layout` what it ran on (devices, mesh, processes),
  // which may differ.
  std::map<std::string, std::string> must_match, layout;
};

struct TrainReport {
  TrainInfo info;
  std::vector<StepMetrics> steps;     // every step of this run (from the resumed step on)
  std::vector<EpochMetrics> epochs;   // every epoch completed in this run
  Tree params;                        // final parameters, whole
  std::int64_t final_step = 0;        // steps done in all, resumed ones included
  bool stopped = false;               // ended early by a StopToken
  double seconds = 0;
};

// Receives progress as training goes, on the thread that called train(), one call at a time and
// in order. Under mpirun only process 0's observer is called.
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(const TrainInfo&) {}
  // After every step; `in_epoch` counts from 1 to info.steps_per_epoch.
  virtual void on_step(const StepMetrics&, int /*epoch*/, std::int64_t /*in_epoch*/) {}
  virtual void on_epoch(const EpochMetrics&) {}
  virtual void on_finish(const TrainReport&) {}
};

// When the host loop takes a snapshot of the training state, and what it does with it. Called on
// the thread that called train(), between steps (the devices wait meanwhile); under mpirun on
// every process, each with the same whole state.
class CheckpointPolicy {
 public:
  virtual ~CheckpointPolicy() = default;
  // Whether to snapshot the state after `step` (counts from 1).
  virtual bool due(std::int64_t step) const = 0;
  // Stores the snapshot; an exception stops training and propagates from train().
  virtual void save(const TrainState& state) = 0;
  // Whether the final step gets a snapshot too, due or not (after TrainHooks::on_trained).
  virtual bool at_end() const { return false; }
};

// A request to stop, from any thread or a signal handler (request_stop is lock-free). The host
// loop checks it between steps: the steps already handed to the devices finish, a checkpoint
// policy (if any) saves the state, and train() returns its report with stopped = true. In one
// process that is the step after the one in progress (the host runs one step ahead). Under mpirun
// a request on any process stops every process after the same step: the requests travel with the
// step's metrics, so every process learns of them at the same step, two or three steps later.
class StopToken {
 public:
  void request_stop() { stop_.store(true, std::memory_order_relaxed); }
  bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> stop_{false};
};

struct TrainHooks {
  TrainObserver* observer = nullptr;
  CheckpointPolicy* checkpoint = nullptr;
  const StopToken* stop = nullptr;
  // Continue from this state (load_checkpoint, train/checkpoint.h) instead of step 0: its
  // parameters, optimizer state and place in the data. Its must_match must equal this run's
  // (ConfigError naming the first difference); the device and process count may differ.
  const TrainState* resume = nullptr;
  // Called once training has reached its end (not when stopped, not when the loss diverged), with
  // the final parameters in the report, before the final snapshot (CheckpointPolicy::at_end): the
  // place for the run's own copy of the model, so that it is committed first. Under mpirun on every
  // process; an exception propagates from train().
  std::function<void(const TrainReport&)> on_trained = nullptr;
};

// Trains `model` (train/model.h) on `train_set`, evaluating on `test_set` after every epoch, as
// `config` says. Throws ConfigError for a bad configuration or input (before any step runs, where
// it can be known then). The model and the data sets must outlive the call.
// Under mpirun every process calls train with the same model, data and config: each loads only its
// slice of every global batch and trains its devices of the one mesh over all processes' devices;
// every process returns the same report, parameters included. (train/builtin_models.h trains the
// built-in MLP and CNN on MNIST-format data.)
TrainReport train(const Model& model, const data::Dataset& train_set, const data::Dataset& test_set,
                  const TrainConfig& config, const TrainHooks& hooks = {});

}  // namespace datarax::train
