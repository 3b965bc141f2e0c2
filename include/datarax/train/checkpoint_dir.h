// A checkpoint folder owned by one run. The folder records the run it belongs to
// (<dir>/datarax-run.json: a random id given at a fresh start, kept by every resume, and written
// into each checkpoint's manifest as "run"), and a lock held for the run (<dir>/datarax.lock, an
// flock by process 0: released by the kernel on any exit, kill -9 included, so a dead process's
// lock never keeps a folder) keeps a second run out. Before the first step, a run is refused
// (ConfigError) when
//   - another live run holds the lock (naming its process and host);
//   - it starts fresh into a folder that holds committed checkpoints (another run's: continuing
//     it is --resume, a new run needs an empty folder);
//   - it resumes a checkpoint that is not the folder's latest (its later checkpoints would be
//     another history of the same steps).
// --keep deletes only checkpoints of the folder's own run. A symbolic link to a folder is followed.
#pragma once

#include <cstdint>
#include <string>

#include "datarax/train/trainer.h"

namespace datarax::train {

// The CheckpointPolicy of a folder: a checkpoint every `every` steps (and when a run is stopped),
// keeping the newest `keep` of its own run. Deletes only committed checkpoints of its own naming
// (ckpt-<step> folders holding a manifest) whose manifest names its run, oldest first, and stale
// temporaries of its own.
class CheckpointDir final : public CheckpointPolicy {
 public:
  // Claims `dir` as the header says (creating it if needed, checking it can be written). `resumed`
  // is the state the run continues from and `resumed_from` its checkpoint folder (nullptr and ""
  // for a fresh run). every >= 1, keep >= 1. Collective under mpirun: process 0 claims the folder
  // and every process throws the same error when it cannot.
  CheckpointDir(std::string dir, std::int64_t every, int keep = 3, const TrainState* resumed = nullptr,
                const std::string& resumed_from = "");
  ~CheckpointDir() override;
  CheckpointDir(const CheckpointDir&) = delete;
  CheckpointDir& operator=(const CheckpointDir&) = delete;

  bool due(std::int64_t step) const override { return step % every_ == 0; }
  // Writes <dir>/ckpt-<step> with this run's id (nothing when the last checkpoint saved, or the
  // one resumed, is of this step), then deletes this run's oldest beyond `keep`. Throws at once
  // when the write fails.
  void save(const TrainState& state) override;

  // The folder of the last checkpoint saved by this policy ("" before the first).
  const std::string& last_saved() const { return last_saved_; }
  // The run the folder belongs to now: 32 hex digits.
  const std::string& run() const { return run_; }

 private:
  void claim(const TrainState* resumed, const std::string& resumed_from);
  // Before each save: the lock file is still the one locked (else it is taken again, or the save fails).
  void keep_lock();

  std::string dir_;
  std::int64_t every_;
  int keep_;
  std::string last_saved_;
  std::int64_t last_step_ = -1;
  std::string run_;
  int lock_fd_ = -1;
  std::string lock_path_;
};

// The committed checkpoint of `dir` with the most steps, or "" when it has none.
std::string latest_checkpoint(const std::string& dir);

// The checkpoint folder that holds `path` — its folder or one above it is a checkpoint
// (ckpt-<step> holding a manifest.json) or a checkpoint folder (holding datarax.lock or
// datarax-run.json) — or "" when none does. Outputs inside one are refused: its files belong to
// its checkpoints and run.
std::string checkpoint_folder_holding(const std::string& path);

// A new run id: 32 hex digits from the system's random source.
std::string new_run_id();

}  // namespace datarax::train
