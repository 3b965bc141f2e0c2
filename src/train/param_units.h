// ParamUnits: where one device keeps its parameters, gradients and optimizer state, for every
// layout of the work and any model — the one mechanism behind replicated data parallelism, ZeRO
// stages 1 to 3 over the "data" axis, and tensor parallelism over "model".
//
// The device's parameters (its tensor-parallel blocks of each tensor, as the model's sharding
// specs place them) are grouped into units, each flattened into one buffer (padded with zeros
// to a multiple of 16 · N floats, N the data axis' size), so that one collective moves a whole
// unit:
//
//   stage 0  replicated        one unit per kind; gradients all-reduced (mean) over "data" in
//                              buckets after backward; the optimizer updates every element
//   stage 1  ZeRO-1            the same units; gradients reduce-scattered over "data" after
//                              backward, each device updating its 1/N slice of each unit (its
//                              optimizer state is that slice's), then the slices all-gathered
//   stage 2  ZeRO-2            one unit per group and kind (a group: the parameters of one
//                              top-level submodule, "dense_0", "conv_1", "h_3"); a group's
//                              gradients are written into a slot of a small pool and
//                              reduce-scattered as soon as backward has finished them
//   stage 3  ZeRO-3 / FSDP     as stage 2, and only the slices of the parameters stay: a group
//                              is all-gathered into a slot of a pool just before its first use
//                              in forward, and again before backward where the slot was reused
//
// The pools hold as many groups as are ever live at once (plan_slots colours the groups' live
// intervals, from the recorded computation): one or two for a chain of layers.
//
// "Kind" keeps apart what tensor parallelism splits over "model" from what every model device
// holds whole: the gradient norm sums the first over "model" and counts the second once.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "datarax/array.h"
#include "datarax/train/trainer.h"
#include "datarax/tree.h"

namespace datarax::train::detail {

struct UnitsSettings {
  int zero_stage = 0;              // 0..3, as above
  std::int64_t bucket_bytes = 0;   // stage 0: all-reduce buckets of at most this many bytes; 0: one per unit
  std::string data_axis = "data";
  std::string model_axis = "model";
};

// When a group is in use on the step's timeline: forward node ids map to themselves, backward
// ones to 2·nodes − id, so that one axis orders both passes. {-1, -1} where the group is unused.
struct GroupUse {
  int first = -1, last = -1;  // the ids of the first and last op nodes that read the group
  // The first and last of those whose BACKWARD reads the group's values (a product's weight is
  // read to pass a gradient to its other operand, not for its own): -1 where none does.
  int backward_first = -1, backward_last = -1;
  // In the evaluation loss' own recording (Model::eval_loss), where the model has one: the first
  // and last of its op nodes that read the group, -1 where none does. On the timeline after both
  // passes of the step (2·nodes + 1 + id): evaluation runs between steps.
  int eval_first = -1, eval_last = -1;
};

class ParamUnits {
 public:
  // `local`: this device's blocks of the parameters; `split[i]`: whether tensor parallelism
  // splits its i-th key (in `local`'s order); `group[i]` its group (0..groups-1); `rank` of `n`
  // this device's place on the data axis.
  ParamUnits(const Tree& local, const std::vector<bool>& split, const std::vector<int>& group, int groups,
             const UnitsSettings& settings, int rank, int n);

  // The stage in effect: the settings' one, or 0 on a data axis of one device.
  int zero_stage() const { return settings_.zero_stage; }
  int groups() const { return static_cast<int>(group_units_.size()); }

  // Stages 2-3: gives each group its slots from the groups' uses (by group) in a graph of
  // `nodes` nodes (and an evaluation graph of `eval_nodes`). Call once, before
  // param_view/grad_view.
  void plan_slots(const std::vector<GroupUse>& uses, int nodes, int eval_nodes = 0);
  // Where the computation reads parameter `key` (stage 3: its group's slot) and writes its
  // gradient (stages 2-3: a slot), as arrays of the parameter's shape.
  Array param_view(const std::string& key) const;
  Array grad_view(const std::string& key) const;

  // Stage 3: gathers the group's slices into its slot (in backward only where another group
  // used the slot since; in forward always: the parameters changed since the last step).
  void gather_group(int group, bool backward);
  // Stages 2-3: the group's gradients are complete: zero what nothing wrote (unused leaves, the
  // padding) and reduce-scatter them into the owned slices.
  void group_gradients_done(int group, const std::vector<bool>& unused);

  // After backward: stage 0 all-reduces, stage 1 reduce-scatters the gradients.
  void reduce_gradients();
  // What the optimizer updates: one leaf per unit ("unit000", ...), the whole unit or its slice.
  Tree& owned_params() { return owned_params_; }
  Tree& owned_grads() { return owned_grads_; }
  // Σ x² of the owned gradients, split by kind: {split over the model axis, whole on every model device}.
  std::pair<double, double> owned_squares() const;
  // After the update: stages 1 and 2 all-gather the updated slices into the whole units.
  void gather_updated();

  // This device's parameter blocks, each a copy keyed like `local` (stage 3 gathers: collective).
  Tree local_params();
  // The same layout over another owned tree (an optimizer state buffer of the owned leaves):
  // the device's blocks keyed like `local` (stages 1 to 3 gather the slices: collective).
  Tree local_view_of(const Tree& owned);
  // Writes `local` (blocks keyed like the parameters) into `owned` (the owned leaves' layout).
  void owned_from_local(const Tree& local, Tree& owned) const;

  // Bytes of its buffers (the optimizer state is the Step's).
  DeviceBytes held_bytes() const;

 private:
  struct Unit {
    std::vector<std::string> keys;   // the leaves, in order
    std::vector<std::size_t> index;  // each leaf's index in the model's key order
    std::vector<Shape> shapes;
    std::vector<std::int64_t> offsets;
    std::int64_t size = 0;           // padded
    int group = -1;                  // -1: every group (stages 0 and 1)
    bool model_split = false;
    std::int64_t slot_at = 0;        // stages 2-3: where in its group's slot it goes
    Array full;                      // stages 0-2: the unit's parameters, whole
    Array shard;                     // stage 3: this device's slice (stages 1-2: a view of `full`)
    Array grad_full;                 // stages 0-1: whole gradients
    Array grad_shard;                // stages 1-3: this device's slice of the reduced gradients
    std::vector<Array> buckets;      // stage 0: views of grad_full
    Array params_in_use;             // where the computation reads it (stage 3: in a slot)
    Array grads_in_use;              // where the computation writes its gradients (stages 2-3: in a slot)
  };
  struct Place {
    std::size_t unit = 0, leaf = 0;
  };
  Array slice_of(const Array& whole) const;
  static Array view(const Array& buffer, const Unit& u, std::size_t leaf);
  const Place& place(const std::string& key) const;

  UnitsSettings settings_;
  int rank_, n_;
  std::vector<Unit> units_;
  std::vector<std::string> keys_;                      // the model's keys, in order
  std::vector<Place> places_;                          // by key index
  std::vector<std::vector<std::size_t>> group_units_;  // by group: its units
  std::vector<std::int64_t> group_size_;               // by group: its units' total size
  std::vector<int> param_slot_, grad_slot_;            // by group: its slots (-1: none)
  std::vector<Array> param_slots_, grad_slots_;        // the pools
  std::vector<int> param_slot_holder_;                 // by param slot: the group it holds (-1: none)
  Tree owned_params_, owned_grads_;
};

}  // namespace datarax::train::detail
