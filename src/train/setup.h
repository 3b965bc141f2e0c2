// What a training run is made of, built from a model, its data and a TrainConfig before any step:
// devices and mesh, this process's loader, the parameters' layout, the optimizer and the initial
// parameters placed on the mesh, the evaluation batches. Everything a bad configuration or input
// can break is checked here, so that it fails (ConfigError, naming the field) before training
// starts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datarax/data/dataset.h"
#include "datarax/data/loader.h"
#include "datarax/mesh.h"
#include "datarax/named_sharding.h"
#include "datarax/nn/precision.h"
#include "datarax/optim/optimizer.h"
#include "datarax/sharded_tree.h"
#include "datarax/sharding_rules.h"
#include "datarax/train/model.h"
#include "datarax/train/trainer.h"
#include "train/whole_tensors.h"

namespace datarax::train::detail {

struct Setup {
  // `resume`, when given, is checked against this run (ConfigError naming the first difference)
  // and gives the initial parameters. model, train_set and test_set must outlive the Setup.
  Setup(const Model& model, const data::Dataset& train_set, const data::Dataset& test_set, const TrainConfig& config,
        const TrainState* resume);

  const Model& model;
  const data::Dataset& train_set;
  const data::Dataset& test_set;
  TrainConfig config;
  nn::Precision precision = nn::Precision::f32;
  Mesh mesh;                      // ("data") or ("data", "model")
  int data_size = 1;              // devices on the "data" axis
  int model_size = 1;             // devices on the "model" axis
  NamedSharding batch_sharding;   // the batch's leading axis over "data", replicated over "model"
  std::unique_ptr<data::Loader> loader;  // this process's slices of the global batches
  ShardingRules rules;            // the parameters' layout over the mesh (the model's specs)
  std::vector<std::string> split; // the keys tensor parallelism splits over "model"
  SplitDims split_dims;           // and the dimension of each
  std::unique_ptr<optim::Optimizer> optimizer;
  ShardedTree params;             // the initial parameters, each device's blocks a copy of its own
  // A resumed optimizer state, placed like the parameters, by buffer ("mu", "nu", ...); and its count.
  std::map<std::string, ShardedTree> resume_opt;
  Array resume_count;
  TrainInfo info;
  std::vector<Device> local;      // this process's devices of the mesh, in mesh order
  std::vector<int> data_rank;     // by local device: its position on the "data" axis
  std::int64_t local_batch = 0;   // rows per device per step
  // By local device: its batch's "first_example" (i64 []: data_rank · local_batch, the index in
  // the global batch of its first row; train/model.h).
  std::vector<Array> first_example;
  // By data position: the test set's rows it evaluates, in batches of local_batch rows (the
  // last padded: mask 0), "count" 1, "first_example" the test-set index of the first row, and
  // "step" eval_step (one array, set to the steps trained before each evaluation); every
  // position has the same number of batches.
  std::vector<std::vector<Tree>> eval_batches;
  Array eval_step = Array::scalar<std::int64_t>(0);
  // What a checkpoint of this run records (TrainState::must_match and layout).
  std::map<std::string, std::string> must_match, layout;
};

}  // namespace datarax::train::detail
