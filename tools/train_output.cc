#include "train_output.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "datarax/error.h"

namespace datarax::tools {

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string duration(double s) {
  if (s < 60) return fmt("%.1fs", s);
  return fmt("%.0fm", std::floor(s / 60)) + fmt("%02.0fs", std::fmod(s, 60));
}

}  // namespace

ConsoleOutput::ConsoleOutput(const train::TrainConfig& config, std::FILE* out)
    : config_(config), out_(out), tty_(isatty(fileno(out)) != 0) {}

void ConsoleOutput::on_start(const train::TrainInfo& info) {
  info_ = info;
  std::fprintf(out_, "datarax-train: %d devices %s | %s, %lld parameters | %s\n", info.devices,
               info.mesh.c_str(), info.model.c_str(), static_cast<long long>(info.parameters), info.dataset.c_str());
  std::fprintf(out_, "  %s lr %g (%s), global batch %lld, %lld steps per epoch, %lld steps\n",
               config_.optimizer.c_str(), config_.lr, config_.schedule.c_str(),
               static_cast<long long>(config_.batch_size), static_cast<long long>(info.steps_per_epoch),
               static_cast<long long>(info.total_steps));
  std::fflush(out_);
  epoch_start_ = last_draw_ = std::chrono::steady_clock::now();
}

void ConsoleOutput::on_step(const train::StepMetrics& m, int epoch, std::int64_t in_epoch) {
  const auto now = std::chrono::steady_clock::now();
  if (in_epoch == 1) epoch_start_ = now;
  const std::int64_t total = info_.steps_per_epoch;
  if (tty_) {
    // Redraw at most ten times a second, and at the end of the epoch.
    if (now - last_draw_ < std::chrono::milliseconds(100) && in_epoch != total) return;
    last_draw_ = now;
    const int width = 30;
    const int filled = total > 0 ? static_cast<int>(width * in_epoch / total) : width;
    const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
    const double eta = in_epoch > 0 ? elapsed / static_cast<double>(in_epoch) * static_cast<double>(total - in_epoch) : 0;
    std::fprintf(out_, "\r  epoch %d [%s%s] %lld/%lld loss %.4f  %.0f samples/s  ETA %s   ", epoch,
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), '.').c_str(),
                 static_cast<long long>(in_epoch), static_cast<long long>(total), m.loss, m.samples_per_s,
                 duration(eta).c_str());
    std::fflush(out_);
  } else if (m.step == 1 || m.step % config_.log_every == 0) {
    std::fprintf(out_, "  epoch %d step %lld/%lld (global %lld): loss %.4f accuracy %.4f, %.0f samples/s\n", epoch,
                 static_cast<long long>(in_epoch), static_cast<long long>(total), static_cast<long long>(m.step),
                 m.loss, m.accuracy, m.samples_per_s);
    std::fflush(out_);
  }
}

void ConsoleOutput::on_epoch(const train::EpochMetrics& m) {
  if (tty_) std::fprintf(out_, "\r%s\r", std::string(100, ' ').c_str());
  if (!table_header_done_) {
    std::fprintf(out_, "  epoch | train loss | train acc | test loss | test acc | samples/s |   time\n");
    table_header_done_ = true;
  }
  std::fprintf(out_, "  %5d | %10.4f | %9.4f | %9.4f | %8.4f | %9.0f | %6s\n", m.epoch, m.train_loss, m.train_accuracy,
               m.test_loss, m.test_accuracy, m.samples_per_s, duration(m.seconds).c_str());
  std::fflush(out_);
}

void ConsoleOutput::on_finish(const train::TrainReport& report) {
  if (tty_ && report.epochs.empty()) std::fprintf(out_, "\n");
  std::fprintf(out_, "done: %zu steps in %s", report.steps.size(), duration(report.seconds).c_str());
  if (!report.steps.empty()) std::fprintf(out_, ", final step loss %.4f", report.steps.back().loss);
  if (!report.epochs.empty())
    std::fprintf(out_, ", test accuracy %.4f (loss %.4f)", report.epochs.back().test_accuracy,
                 report.epochs.back().test_loss);
  std::fprintf(out_, "\n");
  std::fflush(out_);
}

MetricsFile::MetricsFile(std::string path, std::int64_t log_every)
    : path_(std::move(path)), partial_(path_ + ".partial"), log_every_(log_every), file_(partial_, std::ios::trunc) {
  if (!file_) throw InvalidArgumentError("--metrics-out " + path_ + ": cannot write " + partial_);
}

void MetricsFile::on_step(const train::StepMetrics& m, int, std::int64_t) {
  if (m.step != 1 && m.step % log_every_ != 0) return;
  file_ << "{\"step\": " << m.step << ", \"loss\": " << fmt("%.9g", m.loss) << ", \"accuracy\": " << fmt("%.9g", m.accuracy)
        << ", \"samples_per_s\": " << fmt("%.6g", m.samples_per_s) << "}\n";
  file_.flush();
}

void MetricsFile::on_epoch(const train::EpochMetrics& m) {
  file_ << "{\"epoch\": " << m.epoch << ", \"train_loss\": " << fmt("%.9g", m.train_loss)
        << ", \"train_accuracy\": " << fmt("%.9g", m.train_accuracy) << ", \"test_loss\": " << fmt("%.9g", m.test_loss)
        << ", \"test_accuracy\": " << fmt("%.9g", m.test_accuracy) << ", \"samples_per_s\": " << fmt("%.6g", m.samples_per_s)
        << "}\n";
  file_.flush();
}

void MetricsFile::on_finish(const train::TrainReport&) {
  file_.close();
  std::filesystem::rename(partial_, path_);
}

void check_plot_available(const std::string& path) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    throw InvalidArgumentError("--plot " + path +
                               ": gnuplot is not installed; it comes from Debian's gnuplot-nox package "
                               "(scripts/install-deps.sh installs it)");
}

void write_plot(const train::TrainReport& report, const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("datarax-plot-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream steps(dir / "steps.dat");
    for (const auto& s : report.steps) steps << s.step << " " << s.loss << " " << s.accuracy << "\n";
    std::ofstream epochs(dir / "epochs.dat");
    const double per_epoch = static_cast<double>(report.info.steps_per_epoch);
    for (const auto& e : report.epochs)
      epochs << e.epoch * per_epoch << " " << e.test_loss << " " << e.test_accuracy << "\n";
    std::ofstream script(dir / "plot.gp");
    const std::string tmp = path + ".tmp.png";
    script << "set terminal pngcairo size 1200,500 noenhanced\n"
           << "set output '" << tmp << "'\n"
           << "set multiplot layout 1,2 title '" << report.info.model << " on " << report.info.dataset << "'\n"
           << "set xlabel 'step'\nset ylabel 'loss'\nset logscale y\nset grid\n"
           << "plot '" << (dir / "steps.dat").string() << "' using 1:2 with lines title 'train (per step)'"
           << (report.epochs.empty() ? "" : ", '" + (dir / "epochs.dat").string() + "' using 1:2 with linespoints title 'test'") << "\n"
           << "unset logscale y\nset ylabel 'accuracy'\nset yrange [0:1]\n"
           << "plot '" << (dir / "steps.dat").string() << "' using 1:3 with lines title 'train (per step)'"
           << (report.epochs.empty() ? "" : ", '" + (dir / "epochs.dat").string() + "' using 1:3 with linespoints title 'test'") << "\n"
           << "unset multiplot\n";
  }
  const std::string cmd = "gnuplot '" + (dir / "plot.gp").string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  fs::remove_all(dir);
  if (rc != 0)
    throw Error("--plot " + path + ": gnuplot failed (exit status " + std::to_string(rc) +
                "); it comes from Debian's gnuplot-nox package, which scripts/install-deps.sh installs");
  fs::rename(path + ".tmp.png", path);
}

}  // namespace datarax::tools
