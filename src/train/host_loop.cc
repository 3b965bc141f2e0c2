#include "train/host_loop.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <thread>

#include "core/signals.h"
#include "core/strings.h"
#include "datarax/communicator.h"
#include "datarax/device_discovery.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/distributed/distributed_metrics_module.h"
#include "datarax/spmd.h"
#include "train/whole_tensors.h"

namespace datarax::train::detail {

namespace {

using Clock = std::chrono::steady_clock;
using datarax::detail::message_of;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

HostLoop::HostLoop(Setup& setup, const TrainHooks& hooks)
    : setup_(setup),
      hooks_(hooks),
      out_(hooks.observer != nullptr && process_index() == 0 ? *hooks.observer : quiet_),
      settings_{.optimizer = setup.optimizer.get(),
                .clip_norm = setup.config.clip_norm,
                .units = {.zero_stage = setup.config.zero_stage.value(), .bucket_bytes = setup.config.gradient_bucket_bytes},
                .model_size = setup.model_size,
                .precision = setup.precision,
                .time_phases = setup.config.time_phases},
      queue_(static_cast<int>(setup.local.size()), default_collective_timeout()) {
  for (Slot& slot : slots_) {
    slot.shards.resize(setup.local.size());
    slot.totals.resize(setup.local.size());
  }
}

TrainReport HostLoop::run() {
  TrainReport report;
  report.info = setup_.info;
  // Every step's metrics, reserved once: a step allocates nothing, here either.
  report.steps.reserve(static_cast<std::size_t>(std::min<std::int64_t>(setup_.info.total_steps, std::int64_t{1} << 20)));
  const Clock::time_point start = Clock::now();
  // The devices' launch runs on a thread of its own, so that this one stays the host loop.
  std::exception_ptr device_failure;
  std::thread devices([&] {
    datarax::detail::block_async_signals();  // signals are the host thread's (core/signals.h)
    try {
      run_spmd(setup_.mesh, [&](const Device& device) {
        const auto it = std::find(setup_.local.begin(), setup_.local.end(), device);
        device_loop(static_cast<std::size_t>(it - setup_.local.begin()));
      });
    } catch (...) {
      device_failure = std::current_exception();
      queue_.abort("a device failed: " + message_of(device_failure));
    }
  });
  try {
    // What the devices hold, read from their buffers once they exist, for the observer's header.
    const std::uint32_t measured = post(Command::measure);
    queue_.wait_completed(measured);
    report.info.bytes_per_device = slots_[measured % CommandQueue::kSlots].bytes;
    out_.on_start(report.info);
    run_epochs(report);
    post(Command::stop);
  } catch (...) {
    // The devices stop waiting for the host; whoever failed first is the error reported.
    const bool host_first = queue_.abort("the host loop failed: " + message_of(std::current_exception()));
    devices.join();
    if (!host_first && device_failure) std::rethrow_exception(device_failure);
    throw;
  }
  devices.join();
  if (device_failure) std::rethrow_exception(device_failure);
  if (!diverged_.empty()) throw Error(diverged_);
  report.seconds = seconds_since(start);
  out_.on_finish(report);
  return report;
}

void HostLoop::run_epochs(TrainReport& report) {
  const TrainConfig& c = setup_.config;
  const TrainState* resume = hooks_.resume;
  const std::int64_t total = setup_.info.total_steps, per_epoch = setup_.info.steps_per_epoch;
  std::int64_t step = resume != nullptr ? resume->step : 0;
  const int first = resume != nullptr ? resume->epoch : 1;
  Epoch epoch;
  window_start_ = Clock::now();
  for (int e = first; e <= c.epochs && !report.stopped; ++e) {
    epoch = Epoch{e};
    setup_.loader->start_epoch(e - 1);
    if (e == first && resume != nullptr) {  // continue the epoch where the state left it
      setup_.loader->seek(resume->step_in_epoch);
      epoch = {e, resume->step_in_epoch, resume->epoch_loss, resume->epoch_correct, resume->epoch_count};
    }
    if (step >= total && epoch.steps < per_epoch) break;
    const Clock::time_point epoch_start = Clock::now();
    const double resumed_count = epoch.count;  // examples of the epoch a resumed run did not see
    // One step in flight ahead of the one being reported: the host loads and shards step k + 1
    // while the devices run step k.
    std::optional<std::pair<std::uint32_t, std::int64_t>> in_flight;
    auto finish_in_flight = [&] {
      if (in_flight) finish_step(in_flight->first, in_flight->second, epoch, report);
      in_flight.reset();
    };
    while (step < total && diverged_.empty()) {
      if (stop_agreed_ || (process_count() == 1 && stop_requested())) {
        report.stopped = true;
        break;
      }
      if (!post_step(step + 1)) break;
      ++step;
      const std::uint32_t command = queue_.posted() - 1;
      finish_in_flight();
      in_flight = {command, step};
      if (hooks_.checkpoint != nullptr && hooks_.checkpoint->due(step)) {
        finish_in_flight();
        if (diverged_.empty()) hooks_.checkpoint->save(snapshot(step, epoch, true));
      }
    }
    finish_in_flight();
    if (!diverged_.empty()) return;  // nothing is saved over the last good checkpoint
    if (report.stopped || epoch.steps < per_epoch) break;  // no epoch row for a part
    evaluate(epoch, step, (epoch.count - resumed_count) / seconds_since(epoch_start), report);
    report.epochs.back().seconds = seconds_since(epoch_start);
    out_.on_epoch(report.epochs.back());
  }
  // The model first: the run's own copy (on_trained, not for a stopped run), then the final
  // checkpoint (where the stop came, or at the end when the policy wants one there).
  const bool checkpoint_now =
      hooks_.checkpoint != nullptr && (report.stopped || hooks_.checkpoint->at_end());
  TrainState final_state = snapshot(step, epoch, checkpoint_now);
  report.params = final_state.params;
  report.final_step = step;
  if (!report.stopped && hooks_.on_trained) hooks_.on_trained(report);
  if (checkpoint_now) hooks_.checkpoint->save(final_state);
}

bool HostLoop::post_step(std::int64_t step) {
  queue_.wait_for_slot();
  Slot& slot = slots_[queue_.posted() % CommandQueue::kSlots];
  if (!setup_.loader->next(slot.batch)) return false;
  slot.command = Command::step;
  slot.count = slot.batch.at("count").item<float>();
  // The loss's "count": each device's share of the global batch's real examples, so that the
  // mean over the data axis of the devices' losses (and gradients) is the global batch's mean.
  if (slot.share.numel() != 1) slot.share = Array::scalar<float>(0.0f);
  slot.share.data<float>()[0] = static_cast<float>(slot.count / setup_.data_size);
  // The global step's number, in a buffer of the slot's own (the devices may still be reading the
  // previous step's in another slot): the batch's "step", for a model's randomness (dropout).
  if (slot.step.numel() != 1) slot.step = Array::scalar<std::int64_t>(0);
  slot.step.data<std::int64_t>()[0] = step;
  slot.stop = stop_requested() ? 1 : 0;
  // The loader refills the same buffers every step and the shards are views of them: a slot's
  // batch is sharded once, and again only if the loader replaced a buffer.
  bool same = slot.sharded_from.size() == slot.batch.size();
  std::size_t b = 0;
  for (auto it = slot.batch.begin(); same && it != slot.batch.end(); ++it) same = it->second.raw() == slot.sharded_from[b++];
  if (!same) {
    Tree per_example = slot.batch;
    per_example.erase("count");
    const ShardedTree sharded = distributed::DataParallelModule().shard_batch(per_example, setup_.batch_sharding);
    for (std::size_t i = 0; i < setup_.local.size(); ++i) {
      slot.shards[i] = sharded.local_tree(setup_.local[i]);
      slot.shards[i].set("count", slot.share);  // every device's loss divides by it
      slot.shards[i].set("step", slot.step);
      slot.shards[i].set("first_example", setup_.first_example[i]);
    }
    slot.sharded_from.clear();
    for (const auto& kv : slot.batch) slot.sharded_from.push_back(kv.second.raw());
  }
  queue_.post();
  return true;
}

void HostLoop::finish_step(std::uint32_t command, std::int64_t step, Epoch& epoch, TrainReport& report) {
  queue_.wait_completed(command);
  const Slot& slot = slots_[command % CommandQueue::kSlots];
  StepMetrics m;
  m.step = step;
  m.loss = slot.totals[0][0] / setup_.data_size;  // the mean of the devices' losses
  m.accuracy = slot.totals[0][1] / slot.count;
  m.phase_seconds = slot.phases;
  m.finished_at = slot.done_at;
  stop_agreed_ = stop_agreed_ || slot.totals[0][2] > 0;  // a stop asked on any process, with this step
  if (!std::isfinite(m.loss) && diverged_.empty())
    diverged_ = "train: the loss is " + datarax::detail::number(m.loss) + " at step " + std::to_string(step) +
                " (epoch " + std::to_string(epoch.number) + "); stopping, and saving nothing over the last checkpoint";
  // Throughput from when the devices finished the steps, not from when the host got to them (it
  // may learn of two steps at once).
  window_samples_ += static_cast<std::int64_t>(slot.count);
  const double dt = std::chrono::duration<double>(slot.done_at - window_start_).count();
  m.samples_per_s = dt > 0 ? static_cast<double>(window_samples_) / dt : 0;
  if (step == 1 || step % setup_.config.log_every == 0) {
    window_start_ = slot.done_at;
    window_samples_ = 0;
  }
  epoch.loss += m.loss * slot.count;
  epoch.correct += slot.totals[0][1];
  epoch.count += slot.count;
  report.steps.push_back(m);
  out_.on_step(m, epoch.number, ++epoch.steps);
}

std::uint32_t HostLoop::post(Command command) {
  queue_.wait_for_slot();
  const std::uint32_t c = queue_.posted();
  slots_[c % CommandQueue::kSlots].command = command;
  queue_.post();
  return c;
}

void HostLoop::evaluate(const Epoch& epoch, std::int64_t step, double samples_per_s, TrainReport& report) {
  // The evaluation batches' "step": no device reads it until the command is posted.
  setup_.eval_step.data<std::int64_t>()[0] = step;
  const std::uint32_t c = post(Command::evaluate);
  queue_.wait_completed(c);
  const EvalTotals& test = slots_[c % CommandQueue::kSlots].eval;
  EpochMetrics m;
  m.epoch = epoch.number;
  m.train_loss = epoch.loss / epoch.count;
  m.train_accuracy = epoch.correct / epoch.count;
  m.test_loss = test.count > 0 ? test.loss_sum / test.count : 0;
  m.test_accuracy = test.count > 0 ? test.correct / test.count : 0;
  m.samples_per_s = samples_per_s;
  report.epochs.push_back(m);
}

TrainState HostLoop::snapshot(std::int64_t step, const Epoch& epoch, bool with_optimizer_state) {
  queue_.wait_for_slot();
  slots_[queue_.posted() % CommandQueue::kSlots].with_optimizer_state = with_optimizer_state;
  const std::uint32_t c = post(Command::snapshot);
  queue_.wait_completed(c);
  TrainState state = std::move(slots_[c % CommandQueue::kSlots].state);
  state.step = step;
  state.epoch = epoch.number;
  state.step_in_epoch = epoch.steps;
  state.steps_per_epoch = setup_.info.steps_per_epoch;
  state.epoch_loss = epoch.loss;
  state.epoch_correct = epoch.correct;
  state.epoch_count = epoch.count;
  state.must_match = setup_.must_match;
  state.layout = setup_.layout;
  return state;
}

// ---- the devices' side ------------------------------------------------------------------------

Tree HostLoop::local_opt_state(std::size_t local) const {
  Tree out;
  if (setup_.resume_opt.empty()) return out;
  out.set("count", setup_.resume_count);
  for (const auto& [prefix, placed] : setup_.resume_opt)
    for (const auto& [key, leaf] : placed.local_tree(setup_.local[local])) out.set(prefix + "/" + key, leaf);
  return out;
}

void HostLoop::device_loop(std::size_t local) {
  const Tree opt_state = local_opt_state(local);
  Step step(setup_.model, setup_.params.local_tree(setup_.local[local]), setup_.split, settings_, setup_.data_rank[local],
            setup_.data_size, hooks_.resume != nullptr ? &opt_state : nullptr);
  // Recorded on an evaluation batch (the step's shapes): every buffer exists before the header.
  step.prepare(setup_.eval_batches[static_cast<std::size_t>(setup_.data_rank[local])].front());
  Tree totals{{"totals", Array::zeros({3}, DType::f64)}};  // this device's step metrics
  for (std::uint32_t c = 0;; ++c) {
    queue_.wait_posted(c);
    Slot& slot = slots_[c % CommandQueue::kSlots];
    const Command command = slot.command;
    switch (command) {
      case Command::measure:
        if (local == 0) slot.bytes = step.held_bytes();
        break;
      case Command::step: run_step(local, step, slot, totals); break;
      case Command::evaluate: run_evaluate(local, step, slot); break;
      case Command::snapshot: run_snapshot(local, step, slot); break;
      case Command::stop: break;
    }
    if (command != Command::step && step.phase_timer() != nullptr) {
      // Time outside steps (evaluation, snapshots) is no step's: dropped.
      step.phase_timer()->enter(Phase::batch_wait);
      step.phase_timer()->take();
    }
    queue_.complete(c);
    if (command == Command::stop) return;
  }
}

void HostLoop::run_step(std::size_t local, Step& step, Slot& slot, Tree& totals) const {
  const Step::Result r = step.run(slot.shards[local]);
  PhaseTimer* timer = step.phase_timer();
  mark(timer, Phase::metrics);
  // The step's metrics — loss, correct predictions, and whether this process was asked to stop —
  // summed over the devices, in place.
  std::span<double> t = totals.at("totals").data<double>();
  t[0] = r.loss;
  t[1] = r.correct;
  t[2] = slot.stop;
  distributed::DistributedMetricsModule().reduce_in_place(totals, ReduceOp::sum, settings_.units.data_axis);
  slot.totals[local] = {t[0], t[1], t[2]};
  if (local == 0) slot.done_at = Clock::now();  // every device of the step has finished it
  mark(timer, Phase::batch_wait);  // until the next step's command
  if (timer != nullptr && local == 0) slot.phases = timer->take();
}

void HostLoop::run_evaluate(std::size_t local, Step& step, Slot& slot) {
  // Every device evaluates its data position's part of the test set (the devices of one model
  // group the same rows: their layers' collectives need them); the totals are summed over "data".
  const EvalTotals e = step.evaluate(setup_.eval_batches[static_cast<std::size_t>(setup_.data_rank[local])]);
  const Tree total = distributed::DistributedMetricsModule().reduce_custom(
      Tree{{"loss_sum", Array::scalar<double>(e.loss_sum)},
           {"correct", Array::scalar<double>(e.correct)},
           {"count", Array::scalar<double>(e.count)}},
      {{"loss_sum", "sum"}, {"correct", "sum"}, {"count", "sum"}}, settings_.units.data_axis);
  if (local == 0)
    slot.eval = {total.at("loss_sum").item<double>(), total.at("correct").item<double>(), total.at("count").item<double>()};
}

void HostLoop::run_snapshot(std::size_t local, Step& step, Slot& slot) {
  // Every device takes part: gathering ZeRO's slices over "data" and tensor parallelism's blocks
  // over "model" is collective.
  Tree params = whole_from_blocks(step.local_params(), setup_.split_dims, settings_.units.model_axis);
  Tree opt_state = slot.with_optimizer_state
                       ? whole_from_blocks(step.local_optimizer_state(), setup_.split_dims, settings_.units.model_axis)
                       : Tree();
  if (local != 0) return;
  slot.state = TrainState{};
  slot.state.params = std::move(params);
  slot.state.opt_state = std::move(opt_state);
}

}  // namespace datarax::train::detail
