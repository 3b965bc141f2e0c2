// ParamUnits: where one device keeps its parameters, gradients and optimizer state, for every
// layout of the work — the one mechanism behind replicated data parallelism, ZeRO stages 1 to 3
// over the "data" axis, and tensor parallelism over "model".
//
// The device's parameters (its tensor-parallel blocks: nn/parallel_mlp.h) are grouped into units,
// each flattened into one buffer (padded with zeros to a multiple of 16 · N floats, N the data axis'
// size), so that one collective moves a whole unit:
//
//   stage 0  replicated        one unit per kind; gradients all-reduced (mean) over "data" in
//                              buckets after backward; the optimizer updates every element
//   stage 1  ZeRO-1            the same units; gradients reduce-scattered over "data" after
//                              backward, each device updating its 1/N slice of each unit (its
//                              optimizer state is that slice's), then the slices all-gathered
//   stage 2  ZeRO-2            one unit per layer and kind; a layer's gradients are
//                              reduce-scattered as soon as backward has them, so only the slices
//                              stay (and one layer's whole gradients in flight)
//   stage 3  ZeRO-3 / FSDP     as stage 2, and only the slices of the parameters stay too: a layer
//                              is all-gathered just before it runs, in forward and again in
//                              backward (but the last layer, still there, and the first, whose
//                              backward needs no weights), into one buffer every layer reuses
//
// "Kind" keeps apart the blocks that tensor parallelism splits over "model" from those every model
// device holds whole (a row layer's bias, an unsplit layer): the gradient norm sums the first over
// "model" and counts the second once. Without a model axis there is one kind. So the collectives of
// a step are: stage 0, one all-reduce per bucket per kind (one in all, by default, with M = 1);
// stage 1, one reduce-scatter and one all-gather per kind; stage 2, one reduce-scatter per unit
// and one all-gather per unit; stage 3, one all-gather per unit in forward, one reduce-scatter per
// unit and one all-gather per unit of the middle layers (1 .. L-2) in backward.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datarax/array.h"
#include "datarax/nn/parallel_mlp.h"
#include "datarax/train/trainer.h"
#include "datarax/tree.h"

namespace datarax::train::detail {

struct UnitsSettings {
  int zero_stage = 0;              // 0..3, as above
  std::int64_t bucket_bytes = 0;   // stage 0: all-reduce buckets of at most this many bytes; 0: one per unit
  std::string data_axis = "data";
  std::string model_axis = "model";
};


class ParamUnits final : public nn::LayerParams<float> {
 public:
  // `local`: this device's blocks of the parameters ("dense_<l>/kernel" and "/bias"), `splits`
  // the layers' tensor-parallel splits, `rank` of `n` this device's place on the data axis.
  ParamUnits(const Tree& local, const std::vector<nn::LayerSplit>& splits, const UnitsSettings& settings, int rank,
             int n);

  // nn::LayerParams: views of the layer's parameters (gathered first at stage 3) and of where its
  // gradients go (reduce-scattered at gradients_done from stage 2 on).
  Weights acquire(int l, bool backward) override;
  void release(int) override {}
  Gradients gradients(int l) override;
  void gradients_done(int l) override;

  // The stage in effect: the settings' one, or 0 on a data axis of one device.
  int zero_stage() const { return settings_.zero_stage; }
  // After backward: stage 0 all-reduces, stage 1 reduce-scatters the gradients.
  void reduce_gradients();
  // What the optimizer updates: one leaf per unit ("unit0", ...), the whole unit or its slice.
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
    std::vector<Shape> shapes;
    std::vector<std::int64_t> offsets;
    std::int64_t size = 0;           // padded
    int layer = -1;                  // -1: every layer (stages 0 and 1)
    bool model_split = false;
    Array full;                      // stages 0-2: the unit's parameters, whole
    Array shard;                     // stage 3: this device's slice (stages 1-2: a view of `full`)
    Array grad_full;                 // stages 0-1: whole gradients
    Array grad_shard;                // stages 1-3: this device's slice of the reduced gradients
    std::vector<Array> buckets;      // stage 0: views of grad_full
    std::int64_t scratch_at = 0;     // stages 2-3: where in its layer's scratch it goes
    Array params_in_use;             // the whole parameters while its layer runs (stage 3: scratch)
    Array grads_in_use;              // where its layer's backward writes (stages 2-3: scratch)
  };
  struct Place {
    std::size_t unit = 0, leaf = 0;
  };
  Array slice_of(const Array& whole) const;
  Array view(const Array& buffer, const Unit& u, std::size_t leaf) const;

  UnitsSettings settings_;
  int rank_, n_, layers_;
  std::vector<Unit> units_;
  std::vector<std::vector<std::size_t>> layer_units_;  // by layer: its units
  std::vector<std::pair<Place, Place>> layer_leaves_;   // by layer: where its kernel and bias are
  // By layer, made once (a step builds no view): the spans its forward/backward use.
  std::vector<Weights> weights_;
  std::vector<Gradients> grads_;
  Array param_scratch_, grad_scratch_;  // stage 3 / stages 2-3: one layer's units, gathered
  int gathered_ = -1;                   // stage 3: the layer param_scratch_ holds
  Tree owned_params_, owned_grads_;
};

}  // namespace datarax::train::detail
