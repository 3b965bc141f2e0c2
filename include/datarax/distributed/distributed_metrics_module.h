// DistributedMetricsModule: aggregates metrics across devices (the seed's module of that name).
//
// Two places to call it from:
//  - inside an SPMD function (pmap, shard_map, run_spmd), naming the axis to reduce over:
//      Tree m = metrics_module.reduce_mean(metrics, "batch");
//  - outside, on per-device metrics: a ShardedTree (e.g. a pmap's stacked output, one block per
//    device) or one Tree per device. Values are taken per device in mesh order; a leaf whose
//    leading axis is split into one-element blocks (a stacked output) loses that axis. A
//    ShardedTree whose mesh spans processes (under mpirun) takes every process's devices: the call
//    is then collective, every process must make it, and every process gets the same result.
//
// Results: sum, max and min keep the dtype (integer metrics stay integers); the mean of integers
// is f64; the mean of floats keeps their dtype. Values combine in device order, so results are the
// same inside and outside SPMD and from run to run.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "datarax/collectives.h"
#include "datarax/reduce_op.h"
#include "datarax/sharded_tree.h"
#include "datarax/tree.h"

namespace datarax::distributed {

class DistributedMetricsModule {
 public:
  // Per-key ops for reduce_custom: "mean", "sum", "max" or "min" (any case).
  using ReduceSpec = std::map<std::string, std::string>;

  // Inside SPMD, over the named axes.
  Tree reduce_mean(const Tree& metrics, const AxisNames& axis_name) const;
  Tree reduce_sum(const Tree& metrics, const AxisNames& axis_name) const;
  Tree reduce_max(const Tree& metrics, const AxisNames& axis_name) const;
  Tree reduce_min(const Tree& metrics, const AxisNames& axis_name) const;
  // Keys not in reduce_fn use mean. An unknown op, or a key of reduce_fn not in the metrics,
  // throws naming it.
  Tree reduce_custom(const Tree& metrics, const ReduceSpec& reduce_fn, const AxisNames& axis_name) const;
  // In place and without allocating: every leaf of `metrics` becomes its reduction with `op` over
  // the axes (a training loop's per-step metrics; one collective per leaf). The mean of an integer
  // leaf cannot stay in place: InvalidArgumentError.
  void reduce_in_place(Tree& metrics, ReduceOp op, const AxisNames& axis_name) const;
  // Every device's value of each metric, in group-rank order.
  std::map<std::string, std::vector<Array>> collect_from_devices(const Tree& metrics,
                                                                 const AxisNames& axis_name) const;
  // Every metric stacked over the devices: a new leading axis, one entry per device.
  Tree all_gather(const Tree& metrics, const AxisNames& axis_name) const;

  // Outside SPMD, on per-device metrics.
  Tree reduce_mean(const ShardedTree& per_device) const;
  Tree reduce_sum(const ShardedTree& per_device) const;
  Tree reduce_max(const ShardedTree& per_device) const;
  Tree reduce_min(const ShardedTree& per_device) const;
  Tree reduce_custom(const ShardedTree& per_device, const ReduceSpec& reduce_fn) const;
  std::map<std::string, std::vector<Array>> collect_from_devices(const ShardedTree& per_device) const;
  Tree all_gather(const ShardedTree& per_device) const;

  Tree reduce_mean(const std::vector<Tree>& per_device) const;
  Tree reduce_sum(const std::vector<Tree>& per_device) const;
  Tree reduce_max(const std::vector<Tree>& per_device) const;
  Tree reduce_min(const std::vector<Tree>& per_device) const;
  Tree reduce_custom(const std::vector<Tree>& per_device, const ReduceSpec& reduce_fn) const;
  std::map<std::string, std::vector<Array>> collect_from_devices(const std::vector<Tree>& per_device) const;
  Tree all_gather(const std::vector<Tree>& per_device) const;
};

}  // namespace datarax::distributed
