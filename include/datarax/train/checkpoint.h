// Checkpoints: a training state in a folder, written whole or not at all, and read back to resume
// on any number of devices or processes.
//
//   <dir>/ckpt-<step>/params.safetensors     the parameters, whole tensors ("dense_0/kernel", ...)
//                    /optimizer.safetensors  the optimizer state, whole ("count", "mu/dense_0/kernel")
//                    /manifest.json          the run it belongs to, step, epoch, position in the
//                                            epoch's data order and steps per epoch, the epoch's
//                                            running totals, what a resumed run must match (data
//                                            set, model, optimizer and schedule, seed, batch), the
//                                            layout it ran on, the library version, and each
//                                            tensor file's size and XXH3-64 checksum
//
// A checkpoint is written into a temporary folder in <dir>, every file fsynced, then renamed to
// ckpt-<step> and <dir> fsynced (io::write_folder_atomically): a folder named ckpt-<step> is
// always complete. Under mpirun the state is whole on every process after its snapshot, and
// process 0 alone writes it (one writer, no extra traffic; docs/reliability.md has the figures);
// every process then learns whether it succeeded, and a failure throws on all of them.
//
// A checkpoint verifies itself when read: each tensor file's size and checksum against the
// manifest, the manifest's counters against each other (step = (epoch - 1) x steps_per_epoch +
// step_in_epoch, the epoch's totals), and the optimizer's update count against the step. Any
// mismatch is refused, naming the file. The folder a run writes checkpoints to is a CheckpointDir
// (datarax/train/checkpoint_dir.h), which that run owns.
#pragma once

#include <cstdint>
#include <string>

#include "datarax/train/checkpoint_dir.h"
#include "datarax/train/trainer.h"

namespace datarax::train {

// A tensor file of a checkpoint as its manifest records it.
struct TensorFile {
  std::uint64_t bytes = 0;
  std::uint64_t xxh3 = 0;  // XXH3-64 (libxxhash) of the whole file
};
struct ManifestFiles {
  TensorFile params, optimizer;
};

// Writes `state` as the checkpoint folder `path` (which must not exist), atomically; a state with
// no run id gets a new one.
void save_checkpoint(const std::string& path, const TrainState& state);

// Reads the checkpoint folder `path`, checking everything it reads as the header says
// (InvalidArgumentError naming the file and the problem).
TrainState load_checkpoint(const std::string& path);

// The text of a manifest.json for `state`, and `state`'s counters and identity read back from one
// (InvalidArgumentError for anything but a manifest this library writes). Exposed for tests and the
// fuzzer; load_checkpoint uses them.
std::string manifest_json(const TrainState& state, const ManifestFiles& files);
void parse_manifest(const std::string& text, TrainState& state, ManifestFiles& files,
                    const std::string& source = "manifest.json");

}  // namespace datarax::train
