// HostLoop: the trainer's host side, and the device loop it drives (trainer.h has the picture).
//
// On the calling thread: for every step, this process's slice of the global batch is loaded and
// sharded over its devices (views) into a free slot of the CommandQueue, one step ahead of the
// devices; finished steps' metrics go to the observer; between steps come the epoch's evaluation,
// checkpoints (CheckpointPolicy) and stop requests (StopToken). On the devices: one SPMD launch
// for the whole run (on a thread of its own, so that the host loop keeps this one), in which each
// device builds its Step and then runs the commands in order.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datarax/train/trainer.h"
#include "train/command_queue.h"
#include "train/setup.h"
#include "train/step.h"

namespace datarax::train::detail {

class HostLoop {
 public:
  HostLoop(Setup& setup, const TrainHooks& hooks);
  TrainReport run();

 private:
  enum class Command { measure, step, evaluate, snapshot, stop };
  struct Slot {
    Command command = Command::stop;
    Tree batch;                      // this process's slice (the loader refills these buffers)
    std::vector<Tree> shards;        // by local device: its views of `batch`
    std::vector<const void*> sharded_from;  // the batch's buffers the shards are views of
    double count = 0;                // real examples in the global batch
    Array share;                     // f32 []: count / the data axis' size, the loss's "count"
    Array step;                      // i64 []: the step's number (from 1), the batch's "step"
    double stop = 0;                 // step: 1 when this process was asked to stop (StopToken)
    std::vector<std::array<double, 3>> totals;  // step: by local device, {loss, correct, stops} reduced
    std::chrono::steady_clock::time_point done_at;  // step: when the devices finished it
    EvalTotals eval;                 // evaluate: over the whole test set
    bool with_optimizer_state = false;  // snapshot: also the optimizer's state (collective)
    TrainState state;                // snapshot: the whole state
    DeviceBytes bytes;               // measure: what the first device holds
    std::array<double, kPhaseCount> phases{};  // step: the first device's (time_phases)
  };
  struct Epoch {
    int number = 0;
    std::int64_t steps = 0;          // reported so far
    double loss = 0, correct = 0, count = 0;
  };

  // Host side.
  void run_epochs(TrainReport& report);
  bool post_step(std::int64_t step);            // false: the epoch has no more batches
  void finish_step(std::uint32_t command, std::int64_t step, Epoch& epoch, TrainReport& report);
  std::uint32_t post(Command command);          // fills nothing: for commands without a batch
  void evaluate(const Epoch& epoch, std::int64_t step, double samples_per_s, TrainReport& report);
  TrainState snapshot(std::int64_t step, const Epoch& epoch, bool with_optimizer_state);
  bool stop_requested() const { return hooks_.stop != nullptr && hooks_.stop->stop_requested(); }

  // Device side, on device `local` of this process.
  void device_loop(std::size_t local);
  void run_step(std::size_t local, Step& step, Slot& slot, Tree& totals) const;
  void run_evaluate(std::size_t local, Step& step, Slot& slot);
  void run_snapshot(std::size_t local, Step& step, Slot& slot);
  Tree local_opt_state(std::size_t local) const;  // a resumed optimizer state's blocks, or empty

  Setup& setup_;
  TrainHooks hooks_;
  TrainObserver quiet_;
  TrainObserver& out_;               // hooks' observer on process 0, else quiet_
  StepSettings settings_;
  CommandQueue queue_;
  std::array<Slot, CommandQueue::kSlots> slots_;
  // The samples/s window of StepMetrics (log_every steps).
  std::chrono::steady_clock::time_point window_start_;
  std::int64_t window_samples_ = 0;
  bool stop_agreed_ = false;   // a process asked to stop; every process learns it with the same step
  std::string diverged_;       // set when the loss became non-finite: the error train() throws
};

}  // namespace datarax::train::detail
