#include "train_output.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string_view>
#include <vector>

#include "datarax/error.h"
#include "cli_parse.h"
#include "program.h"

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
    : config_(config), fd_(fileno(out)), tty_(isatty(fileno(out)) != 0), out_(open_memstream(&text_, &length_)) {
  if (out_ == nullptr) throw Error(std::string("datarax-train: cannot buffer the console output: ") + std::strerror(errno));
  std::fflush(out);  // what the stream held before goes first
}

ConsoleOutput::~ConsoleOutput() {
  flush();
  std::fclose(out_);
  std::free(text_);
}

void ConsoleOutput::flush(std::chrono::milliseconds deadline) {
  if (fd_ == STDOUT_FILENO) std::fflush(stdout);  // the tool's own lines (resume:, saved:) stay in order
  std::fflush(out_);
  const std::size_t n = length_;
  std::size_t done = 0;
  const auto until = std::chrono::steady_clock::now() + (dropping_ ? std::chrono::milliseconds(0) : deadline);
  while (done < n) {
    // At most PIPE_BUF bytes once the descriptor says it takes data: such a write does not block.
    pollfd p{.fd = fd_, .events = POLLOUT, .revents = 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) break;
    const ssize_t w = ::write(fd_, text_ + done, std::min<std::size_t>(n - done, PIPE_BUF));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += static_cast<std::size_t>(w);
    dropping_ = false;
  }
  if (done < n) {
    dropped_ += n - done;
    dropping_ = true;
  }
  std::fseek(out_, 0, SEEK_SET);  // the next lines overwrite the buffer
  std::fflush(out_);
}

void ConsoleOutput::on_start(const train::TrainInfo& info) {
  info_ = info;
  std::fprintf(out_, "datarax-train: %d devices %s | %s, %lld parameters | %s\n", info.devices,
               info.mesh.c_str(), info.model.c_str(), static_cast<long long>(info.parameters),
               printable(info.dataset).c_str());  // the data folder's name, as given
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
  flush();
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
    flush();
  } else if ((m.step == 1 || m.step % config_.log_every == 0) && info_.accuracy) {
    std::fprintf(out_, "  epoch %d step %lld/%lld (global %lld): loss %.4f accuracy %.4f, %.0f samples/s\n", epoch,
                 static_cast<long long>(in_epoch), static_cast<long long>(total), static_cast<long long>(m.step),
                 m.loss, m.accuracy, m.samples_per_s);
    flush();
  } else if (m.step == 1 || m.step % config_.log_every == 0) {  // a model without accuracy (the GPT)
    std::fprintf(out_, "  epoch %d step %lld/%lld (global %lld): loss %.4f, %.0f samples/s\n", epoch,
                 static_cast<long long>(in_epoch), static_cast<long long>(total), static_cast<long long>(m.step),
                 m.loss, m.samples_per_s);
    flush();
  }
}

void ConsoleOutput::on_epoch(const train::EpochMetrics& m) {
  if (tty_) std::fprintf(out_, "\r%s\r", std::string(100, ' ').c_str());
  if (!info_.accuracy) {  // the loss per token in nats and in bits (per byte, for a byte model)
    if (!table_header_done_) {
      std::fprintf(out_, "  epoch | train loss | val loss | val bits | samples/s |   time\n");
      table_header_done_ = true;
    }
    std::fprintf(out_, "  %5d | %10.4f | %8.4f | %8.4f | %9.0f | %6s\n", m.epoch, m.train_loss, m.test_loss,
                 m.test_loss / std::log(2.0), m.samples_per_s, duration(m.seconds).c_str());
    flush();
    return;
  }
  if (!table_header_done_) {
    std::fprintf(out_, "  epoch | train loss | train acc | test loss | test acc | samples/s |   time\n");
    table_header_done_ = true;
  }
  std::fprintf(out_, "  %5d | %10.4f | %9.4f | %9.4f | %8.4f | %9.0f | %6s\n", m.epoch, m.train_loss, m.train_accuracy,
               m.test_loss, m.test_accuracy, m.samples_per_s, duration(m.seconds).c_str());
  flush();
}

void ConsoleOutput::on_finish(const train::TrainReport& report) {
  if (tty_ && report.epochs.empty()) std::fprintf(out_, "\n");
  std::fprintf(out_, "done: %zu steps in %s", report.steps.size(), duration(report.seconds).c_str());
  if (!report.steps.empty()) std::fprintf(out_, ", final step loss %.4f", report.steps.back().loss);
  if (!report.epochs.empty() && info_.accuracy)
    std::fprintf(out_, ", test accuracy %.4f (loss %.4f)", report.epochs.back().test_accuracy,
                 report.epochs.back().test_loss);
  else if (!report.epochs.empty())
    std::fprintf(out_, ", validation loss %.4f nats per token (%.4f bits)", report.epochs.back().test_loss,
                 report.epochs.back().test_loss / std::log(2.0));
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
  if (dropped_ > 0)
    std::fprintf(out_, "(%zu bytes of progress were dropped: the output was not read in time)\n", dropped_);
  dropping_ = false;  // the summary gets its own chance
  flush(std::chrono::milliseconds(5000));
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

void MetricsFile::commit() { file_.commit(); }

namespace {

constexpr auto kPlotDeadline = std::chrono::minutes(2);
constexpr std::size_t kMaxPng = 64 << 20;
constexpr std::size_t kMaxPoints = 20000;  // per curve: a plot of more is no clearer, only slower

// Whether `bytes` hold a whole PNG: its signature, and its last chunk IEND.
bool whole_png(const std::string& bytes) {
  static const std::string signature("\x89PNG\r\n\x1a\n", 8);
  static const std::string iend("\0\0\0\0IEND\xae\x42\x60\x82", 12);
  return bytes.size() >= signature.size() + iend.size() && bytes.compare(0, 8, signature) == 0 &&
         bytes.compare(bytes.size() - 12, 12, iend) == 0;
}

// The title as gnuplot reads it between single quotes: letters, digits and plain punctuation
// only, anything else '?', so that nothing in it (a quote, a backquote, '@', '$') means anything.
std::string inert_title(const std::string& text) {
  std::string out;
  for (const char c : text)
    out += std::isalnum(static_cast<unsigned char>(c)) || std::string_view(" ,.:;=()[]_+-/%").find(c) != std::string_view::npos ? c : '?';
  return out;
}

// The whole program gnuplot reads from its stdin: the data inline (numbers we format), the PNG to
// its stdout ("set output" with no name). No name of a file appears in it.
std::string plot_script(const train::TrainReport& report) {
  std::string s = "set terminal pngcairo size 1200,500 noenhanced\nset output\n$steps << EOD\n";
  const std::size_t stride = report.steps.size() / kMaxPoints + 1;
  for (std::size_t i = 0; i < report.steps.size(); ++i)
    if (i % stride == 0 || i + 1 == report.steps.size()) {
      const auto& st = report.steps[i];
      s += std::to_string(st.step) + " " + fmt("%.9g", st.loss) + " " + fmt("%.9g", st.accuracy) + "\n";
    }
  s += "EOD\n$epochs << EOD\n";
  const double per_epoch = static_cast<double>(report.info.steps_per_epoch);
  for (const auto& e : report.epochs)
    s += fmt("%.0f", e.epoch * per_epoch) + " " + fmt("%.9g", e.test_loss) + " " + fmt("%.9g", e.test_accuracy) + "\n";
  s += "EOD\nset multiplot layout 1,2 title '" + inert_title(report.info.model + " on " + report.info.dataset) + "'\n";
  const std::string test = report.epochs.empty() ? "" : ", $epochs using 1:COL with linespoints title 'test'";
  auto curves = [&](const char* col) {
    std::string t = test;
    if (!t.empty()) t.replace(t.find("COL"), 3, col);
    return std::string("plot $steps using 1:") + col + " with lines title 'train (per step)'" + t + "\n";
  };
  s += "set xlabel 'step'\nset ylabel 'loss'\nset logscale y\nset grid\n" + curves("2");
  s += "unset logscale y\nset ylabel 'accuracy'\nset yrange [0:1]\n" + curves("3") + "unset multiplot\n";
  return s;
}

}  // namespace

void check_plot_available(const std::string& path) {
  if (find_program("gnuplot").empty())
    throw InvalidArgumentError("--plot " + path +
                               ": gnuplot is not installed; it comes from Debian's gnuplot-nox package "
                               "(scripts/install-deps.sh installs it)");
}

void write_plot(const train::TrainReport& report, const std::string& path) {
  const std::string gnuplot = find_program("gnuplot");
  if (gnuplot.empty()) check_plot_available(path);
  // -d: no start-up files (~/.gnuplot, gnuplotrc); the script on stdin; no scratch files at all.
  const ProgramResult r = run_program({gnuplot, "-d", "-"}, plot_script(report), kPlotDeadline, kMaxPng);
  std::string why;
  if (r.status == -1) why = "gnuplot could not be started";
  else if (r.timed_out) why = "gnuplot did not finish within " + std::to_string(kPlotDeadline.count()) + " minutes";
  else if (r.status != 0) why = "gnuplot failed (exit status " + std::to_string(r.status) + ")";
  else if (!whole_png(r.out)) why = "gnuplot did not write a whole PNG";
  if (!why.empty()) {
    std::string tail = r.err.substr(0, 300);
    while (!tail.empty() && std::isspace(static_cast<unsigned char>(tail.back()))) tail.pop_back();
    throw Error("--plot " + path + ": " + why + (tail.empty() ? "" : " (it said: " + tail + ")") +
                "; gnuplot comes from Debian's gnuplot-nox package, which scripts/install-deps.sh installs");
  }
  io::write_file_atomically(path, "--plot", [&](io::AtomicFile& f) { f.write(r.out); });
}

}  // namespace datarax::tools
