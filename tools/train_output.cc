#include "train_output.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern char** environ;

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
  const train::DeviceBytes& b = info.bytes_per_device;
  const double mib = 1 << 20;
  std::fprintf(out_, "  layout: %s; per device %.1f MiB (parameters %.1f, gradients %.1f, optimizer %.1f, in flight %.1f)\n",
               info.layout.c_str(), static_cast<double>(b.total()) / mib, static_cast<double>(b.params) / mib,
               static_cast<double>(b.grads) / mib, static_cast<double>(b.optimizer) / mib,
               static_cast<double>(b.in_flight) / mib);
  std::fprintf(out_, "  matmul (%s): %s\n", config_.precision.c_str(), info.matmul_kernel.c_str());
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
  if (config_.time_phases && report.steps.size() > 1) {
    // Where the first device's step time went: each phase's median over the steps after the first
    // tenth (at most 10 steps of warm-up), in ms, and their sum.
    const std::size_t from = std::min<std::size_t>(10, report.steps.size() / 10 + 1);
    std::fprintf(out_, "phases (first device, ms per step, median of steps %zu-%zu):", from + 1, report.steps.size());
    double sum = 0;
    for (std::size_t p = 0; p < kPhaseCount; ++p) {
      std::vector<double> v;
      for (std::size_t s = from; s < report.steps.size(); ++s) v.push_back(report.steps[s].phase_seconds[p] * 1e3);
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
      const double median = v[v.size() / 2];
      sum += median;
      std::fprintf(out_, " %s %.3f", std::string(to_string(static_cast<Phase>(p))).c_str(), median);
    }
    std::fprintf(out_, "; sum %.3f\n", sum);
  }
  std::fflush(out_);
}

namespace {

// A JSON number, or null where JSON has none (NaN, infinities).
std::string json_number(const char* format, double v) { return std::isfinite(v) ? fmt(format, v) : "null"; }

}  // namespace

MetricsFile::MetricsFile(std::string path, std::int64_t log_every)
    : file_(std::move(path), "--metrics-out"), log_every_(log_every) {}

void MetricsFile::on_step(const train::StepMetrics& m, int, std::int64_t) {
  if (m.step != 1 && m.step % log_every_ != 0) return;
  file_.write("{\"step\": " + std::to_string(m.step) + ", \"loss\": " + json_number("%.9g", m.loss) +
              ", \"accuracy\": " + json_number("%.9g", m.accuracy) + ", \"samples_per_s\": " +
              json_number("%.6g", m.samples_per_s) + "}\n");
}

void MetricsFile::on_epoch(const train::EpochMetrics& m) {
  file_.write("{\"epoch\": " + std::to_string(m.epoch) + ", \"train_loss\": " + json_number("%.9g", m.train_loss) +
              ", \"train_accuracy\": " + json_number("%.9g", m.train_accuracy) + ", \"test_loss\": " +
              json_number("%.9g", m.test_loss) + ", \"test_accuracy\": " + json_number("%.9g", m.test_accuracy) +
              ", \"samples_per_s\": " + json_number("%.6g", m.samples_per_s) + "}\n");
}

void MetricsFile::on_finish(const train::TrainReport&) { file_.commit(); }

namespace {

// The gnuplot executable on PATH, or "".
std::string find_gnuplot() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t at = 0; at <= dirs.size();) {
    const std::size_t colon = std::min(dirs.find(':', at), dirs.size());
    const std::string dir = dirs.substr(at, colon - at);
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/gnuplot";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = colon + 1;
  }
  return "";
}

// Runs argv[0] with argv, no shell, and waits; its exit status, or -1 when it could not start.
int run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// Whether `path` holds a whole PNG: its signature, and its last chunk IEND.
bool whole_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  static const std::string signature("\x89PNG\r\n\x1a\n", 8);
  static const std::string iend("\0\0\0\0IEND\xae\x42\x60\x82", 12);
  return bytes.size() >= signature.size() + iend.size() && bytes.compare(0, 8, signature) == 0 &&
         bytes.compare(bytes.size() - 12, 12, iend) == 0;
}

// The plot: ARG1 the PNG, ARG2 the steps' data, ARG3 the epochs' (or ""), ARG4 the title. Only
// string variables: nothing the user named is parsed as gnuplot code.
constexpr const char* kPlotScript = R"(set terminal pngcairo size 1200,500 noenhanced
set output ARG1
set multiplot layout 1,2 title ARG4
set xlabel 'step'
set ylabel 'loss'
set logscale y
set grid
if (strlen(ARG3) > 0) {
  plot ARG2 using 1:2 with lines title 'train (per step)', ARG3 using 1:2 with linespoints title 'test'
} else {
  plot ARG2 using 1:2 with lines title 'train (per step)'
}
unset logscale y
set ylabel 'accuracy'
set yrange [0:1]
if (strlen(ARG3) > 0) {
  plot ARG2 using 1:3 with lines title 'train (per step)', ARG3 using 1:3 with linespoints title 'test'
} else {
  plot ARG2 using 1:3 with lines title 'train (per step)'
}
unset multiplot
)";

}  // namespace

void check_plot_available(const std::string& path) {
  if (find_gnuplot().empty())
    throw InvalidArgumentError("--plot " + path +
                               ": gnuplot is not installed; it comes from Debian's gnuplot-nox package "
                               "(scripts/install-deps.sh installs it)");
}

void write_plot(const train::TrainReport& report, const std::string& path) {
  namespace fs = std::filesystem;
  std::string work = (fs::temp_directory_path() / "datarax-plot-XXXXXX").string();
  if (::mkdtemp(work.data()) == nullptr) throw Error("--plot " + path + ": cannot create a folder for gnuplot's input");
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{work};
  const std::string steps = work + "/steps.dat", epochs = work + "/epochs.dat", script = work + "/plot.gp";
  io::write_file_atomically(steps, "--plot", [&](io::AtomicFile& f) {
    for (const auto& s : report.steps)
      f.write(std::to_string(s.step) + " " + fmt("%.9g", s.loss) + " " + fmt("%.9g", s.accuracy) + "\n");
  });
  io::write_file_atomically(epochs, "--plot", [&](io::AtomicFile& f) {
    const double per_epoch = static_cast<double>(report.info.steps_per_epoch);
    for (const auto& e : report.epochs)
      f.write(fmt("%.0f", e.epoch * per_epoch) + " " + fmt("%.9g", e.test_loss) + " " + fmt("%.9g", e.test_accuracy) + "\n");
  });
  io::write_file_atomically(script, "--plot", [&](io::AtomicFile& f) { f.write(kPlotScript); });
  io::AtomicFile png(path, "--plot");
  const std::string gnuplot = find_gnuplot();
  if (gnuplot.empty()) check_plot_available(path);
  const int rc = run_program({gnuplot, "-c", script, png.temp_path(), steps, report.epochs.empty() ? "" : epochs,
                              report.info.model + " on " + report.info.dataset});
  if (rc != 0)
    throw Error("--plot " + path + ": gnuplot failed (exit status " + std::to_string(rc) +
                "); it comes from Debian's gnuplot-nox package, which scripts/install-deps.sh installs");
  if (!whole_png(png.temp_path()))
    throw Error("--plot " + path + ": gnuplot did not write a whole PNG (a full disk?); the old file is left as it was");
  png.commit();
}

}  // namespace datarax::tools
