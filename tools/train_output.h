// What datarax-train shows and writes while training: the console (header, a live progress bar
// per epoch or plain lines when stdout is not a terminal, a table row per epoch, a summary), the
// metrics file (JSON lines) and the plot (PNG through gnuplot).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "datarax/io/file.h"
#include "datarax/train/trainer.h"

namespace datarax::tools {

// The console: the header, progress, the epoch rows and the summary, written to `out`.
//
// The host loop never waits on the console for long: lines are formatted into memory and written
// to out's descriptor as far as it takes them within a deadline (2 s; the final summary 5 s).
// What it does not take by then is dropped, and later lines are dropped at once until it takes
// data again. A reader that stops reading — mpirun, once it starts killing a job after SIGTERM,
// stops forwarding its processes' output — would otherwise block the host loop in a write, the
// step in flight would never finish, and neither would the checkpoint the signal asked for.
class ConsoleOutput final : public train::TrainObserver {
 public:
  ConsoleOutput(const train::TrainConfig& config, std::FILE* out);
  ~ConsoleOutput() override;
  ConsoleOutput(const ConsoleOutput&) = delete;
  ConsoleOutput& operator=(const ConsoleOutput&) = delete;
  void on_start(const train::TrainInfo& info) override;
  void on_step(const train::StepMetrics& m, int epoch, std::int64_t in_epoch) override;
  void on_epoch(const train::EpochMetrics& m) override;
  void on_finish(const train::TrainReport& report) override;

 private:
  // Writes what was formatted since the last flush to the descriptor, within `deadline`.
  void flush(std::chrono::milliseconds deadline = std::chrono::milliseconds(2000));

  const train::TrainConfig& config_;
  int fd_;             // out's descriptor
  bool tty_;
  char* text_ = nullptr;       // open_memstream's buffer
  std::size_t length_ = 0;
  std::FILE* out_;             // formats into text_
  bool dropping_ = false;      // the descriptor missed a deadline: drop until it takes data again
  std::size_t dropped_ = 0;    // bytes dropped
  train::TrainInfo info_;
  std::chrono::steady_clock::time_point epoch_start_, last_draw_;
  bool table_header_done_ = false;
};

// Metrics as JSON lines: per logged step {"step","loss","accuracy","samples_per_s"} and per epoch
// {"epoch","train_loss","train_accuracy","test_loss","test_accuracy","samples_per_s"}; a number
// that is not finite is written null (JSON has no NaN). Lines go to a temporary of this process
// next to PATH as they come (every write checked), which becomes PATH on commit(), after the model
// and the final checkpoint are written (io::AtomicFile): PATH is the old file or the whole new one,
// never a mix or a part.
class MetricsFile final : public train::TrainObserver {
 public:
  MetricsFile(std::string path, std::int64_t log_every);
  void on_step(const train::StepMetrics& m, int epoch, std::int64_t in_epoch) override;
  void on_epoch(const train::EpochMetrics& m) override;
  void commit();

 private:
  io::AtomicFile file_;
  std::int64_t log_every_;
};

// Several observers in one.
class Observers final : public train::TrainObserver {
 public:
  void add(train::TrainObserver* o) { all_.push_back(o); }
  void on_start(const train::TrainInfo& i) override { for (auto* o : all_) o->on_start(i); }
  void on_step(const train::StepMetrics& m, int e, std::int64_t s) override { for (auto* o : all_) o->on_step(m, e, s); }
  void on_epoch(const train::EpochMetrics& m) override { for (auto* o : all_) o->on_epoch(m); }
  void on_finish(const train::TrainReport& r) override { for (auto* o : all_) o->on_finish(r); }

 private:
  std::vector<train::TrainObserver*> all_;
};

// Throws InvalidArgumentError (naming --plot) when gnuplot is not installed: checked before
// training, so that a long run does not end without its plot.
void check_plot_available(const std::string& path);

// Writes a PNG of the loss and accuracy curves with gnuplot, atomically. No name reaches a shell or
// gnuplot: gnuplot (tools/program.h: no shell, an empty environment, no start-up files) reads its
// script and the data from its stdin and writes the PNG to its stdout; no file name appears in
// the script, and the title keeps only inert characters. The PNG is checked whole (its signature
// and its end chunk) and then written to `path` by io::AtomicFile. No scratch file exists at any
// time. Throws datarax::Error when gnuplot is missing, fails or takes more than two minutes.
void write_plot(const train::TrainReport& report, const std::string& path);

}  // namespace datarax::tools
