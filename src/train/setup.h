// What a training run is made of, built from a TrainConfig before any step: devices and mesh, the
// data sets and this process's loader, the model, the optimizer and the initial parameters
// placed on the mesh. Everything a bad configuration or input can break is checked here, so that
// it fails (ConfigError, naming the field) before training starts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datarax/data/loader.h"
#include "datarax/data/mnist.h"
#include "datarax/mesh.h"
#include "datarax/named_sharding.h"
#include "datarax/nn/mlp.h"
#include "datarax/nn/parallel_mlp.h"
#include "datarax/sharding_rules.h"
#include "datarax/optim/optimizer.h"
#include "datarax/sharded_tree.h"
#include "datarax/train/trainer.h"

namespace datarax::train::detail {

struct Setup {
  // `resume`, when given, is checked against this run (ConfigError naming the first difference)
  // and gives the initial parameters.
  Setup(const TrainConfig& config, const TrainState* resume);

  TrainConfig config;
  Mesh mesh;                      // ("data") or ("data", "model")
  int data_size = 1;              // devices on the "data" axis
  NamedSharding batch_sharding;   // the batch's leading axis over "data", replicated over "model"
  data::ArrayDataset train_set, test_set;
  std::unique_ptr<data::Loader> loader;  // this process's slices of the global batches
  nn::ParallelMlpConfig model;    // the MLP and its tensor-parallel splits over "model"
  ShardingRules rules;            // the parameters' layout over the mesh (tensor_parallel_rules)
  std::unique_ptr<optim::Optimizer> optimizer;
  ShardedTree params;             // the initial parameters, each device's blocks a copy of its own
  // A resumed optimizer state, placed like the parameters, by buffer ("mu", "nu", ...); and its count.
  std::map<std::string, ShardedTree> resume_opt;
  Array resume_count;
  TrainInfo info;
  std::vector<Device> local;      // this process's devices of the mesh, in mesh order
  std::vector<int> data_rank;     // by local device: its position on the "data" axis
  std::int64_t local_batch = 0;   // rows per device per step
  // What a checkpoint of this run records (TrainState::must_match and layout).
  std::map<std::string, std::string> must_match, layout;
};

}  // namespace datarax::train::detail
