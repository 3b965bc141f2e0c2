// The data-parallel trainer: an MLP on MNIST-format data over a "data" mesh of local devices.
//
// Each step, as in the seed's example: the global batch is sharded over the "data" axis (views, no
// copy); every device runs forward and backward on its shard; DataParallelModule averages the
// gradients across devices; every device applies the same optimizer update to its own replica (or,
// with shard_optimizer_state, to its slice: ZeRO-1). The step's loss and accuracy are combined in
// place in a fixed buffer, so that steps allocate nothing; the epoch's test metrics go through
// DistributedMetricsModule::reduce_custom. All steps of an epoch run in one SPMD launch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datarax/train/train_config.h"
#include "datarax/tree.h"

namespace datarax::train {

struct StepMetrics {
  std::int64_t step = 0;      // counts from 1
  double loss = 0;            // mean loss of the step's global batch, before its update
  double accuracy = 0;
  double samples_per_s = 0;   // over the steps since the last logged one
};

struct EpochMetrics {
  int epoch = 0;              // counts from 1
  double train_loss = 0, train_accuracy = 0;  // means over the epoch's steps' examples
  double test_loss = 0, test_accuracy = 0;
  double samples_per_s = 0;
  double seconds = 0;
};

struct TrainInfo {
  int devices = 0;
  std::string mesh;           // e.g. "Mesh(data=2; cpu:0..1)"
  std::int64_t parameters = 0;
  std::string model;          // e.g. "MLP 784-512-512-10 (relu)"
  std::string dataset;        // e.g. "fashion-mnist: 60000 train, 10000 test"
  std::int64_t steps_per_epoch = 0;
  std::int64_t total_steps = 0;
};

struct TrainReport {
  TrainInfo info;
  std::vector<StepMetrics> steps;     // every step
  std::vector<EpochMetrics> epochs;   // every completed epoch
  Tree params;                        // final parameters (device 0's replica)
  double seconds = 0;
};

// Receives progress as training goes. Calls come one at a time, in order, but on_step is called
// from the first device's worker thread (inside the SPMD launch that runs the epoch's steps); the
// others come from the caller's thread.
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(const TrainInfo&) {}
  // After every step; `in_epoch` counts from 1 to info.steps_per_epoch.
  virtual void on_step(const StepMetrics&, int /*epoch*/, std::int64_t /*in_epoch*/) {}
  virtual void on_epoch(const EpochMetrics&) {}
  virtual void on_finish(const TrainReport&) {}
};

// Trains as `config` says. Throws InvalidArgumentError for bad configuration or data (before any
// step runs, where it can be known then).
// Under mpirun every process calls train with the same config: each loads only its slice of every
// global batch and trains its devices of the one data-parallel mesh over all processes' devices;
// process 0 alone calls the observer and writes config.save_path (every process returns the
// same report, parameters included).
TrainReport train(const TrainConfig& config, TrainObserver* observer = nullptr);

}  // namespace datarax::train
