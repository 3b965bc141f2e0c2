// Checkpoints: a training state in a folder, written whole or not at all, and read back to resume
// on any number of devices or processes.
//
//   <dir>/ckpt-<step>/params.safetensors     the parameters, whole tensors ("dense_0/kernel", ...)
//                    /optimizer.safetensors  the optimizer state, whole ("count", "mu/dense_0/kernel")
//                    /manifest.json          step, epoch, position in the epoch's data order, the
//                                            epoch's running totals, what a resumed run must match
//                                            (data set, model, optimizer and schedule, seed, batch),
//                                            the layout it ran on, the library version
//
// A checkpoint is written into a temporary folder in <dir>, every file fsynced, then renamed to
// ckpt-<step> and <dir> fsynced (io::write_folder_atomically): a folder named ckpt-<step> is
// always complete. Under mpirun the state is whole on every process after its snapshot, and
// process 0 alone writes it (one writer, no extra traffic; docs/reliability.md has the figures);
// every process then learns whether it succeeded, and a failure throws on all of them.
#pragma once

#include <cstdint>
#include <string>

#include "datarax/train/trainer.h"

namespace datarax::train {

// The CheckpointPolicy of a folder: a checkpoint every `every` steps (and when a run is stopped),
// keeping the newest `keep` of them. Deletes only committed checkpoints of its own naming
// (ckpt-<step> folders holding a manifest), oldest first, and stale temporaries of its own.
class CheckpointDir final : public CheckpointPolicy {
 public:
  // Creates `dir` if needed and checks that it can be written (InvalidArgumentError naming it).
  // every >= 1, keep >= 1.
  CheckpointDir(std::string dir, std::int64_t every, int keep = 3);

  bool due(std::int64_t step) const override { return step % every_ == 0; }
  // Writes <dir>/ckpt-<step> (nothing when the last checkpoint saved is of this step), then
  // deletes the oldest beyond `keep`. Throws at once when the write fails.
  void save(const TrainState& state) override;

  // The folder of the last checkpoint saved by this policy ("" before the first).
  const std::string& last_saved() const { return last_saved_; }

 private:
  std::string dir_;
  std::int64_t every_;
  int keep_;
  std::string last_saved_;
  std::int64_t last_step_ = -1;
};

// Writes `state` as the checkpoint folder `path` (which must not exist), atomically.
void save_checkpoint(const std::string& path, const TrainState& state);

// Reads the checkpoint folder `path`, checking everything it reads (InvalidArgumentError naming
// the file and the problem).
TrainState load_checkpoint(const std::string& path);

// The committed checkpoint of `dir` with the most steps, or "" when it has none.
std::string latest_checkpoint(const std::string& dir);

// The text of a manifest.json for `state`, and `state`'s counters and identity read back from one
// (InvalidArgumentError for anything but a manifest this library writes). Exposed for tests and the
// fuzzer; load_checkpoint uses them.
std::string manifest_json(const TrainState& state);
void parse_manifest(const std::string& text, TrainState& state, const std::string& source = "manifest.json");

}  // namespace datarax::train
