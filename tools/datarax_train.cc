// datarax-train: data-parallel training of an MLP on Fashion-MNIST (or any MNIST-format data set)
// over local CPU devices, with the seed's modules.
//
//   datarax-train                                 # the defaults: 10 epochs of Fashion-MNIST
//   datarax-train --devices 2 --epochs 1 --metrics-out m.jsonl --plot curves.png
//
// Exit codes: 0 success, 2 bad arguments or bad input files, 1 anything else.
#include <algorithm>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli_parse.h"
#include "datarax/datarax.h"
#include "datarax/io/safetensors.h"
#include "datarax/train/trainer.h"
#include "train_output.h"

namespace {

std::vector<int> parse_hidden(const std::string& text) {
  std::vector<int> out;
  if (text.empty() || text == "none") return out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    std::size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < 1)
      throw datarax::InvalidArgumentError("--hidden: \"" + item +
                                          "\" is not a layer width; expected widths >= 1 separated by commas, e.g. 512,512");
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

// The flag that sets a TrainConfig field: "--" and the field with dashes, but for the two whose
// flags say it differently.
std::string flag_of(const std::string& field) {
  if (field == "data_parallel") return "--mesh";
  if (field == "init_path") return "--init";
  std::string flag = "--" + field;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// The library names its fields; the user typed flags.
datarax::InvalidArgumentError in_flags(const datarax::train::ConfigError& e) {
  const std::string value = e.field() == "data_parallel" ? "data=" + e.value() : e.value();
  return datarax::InvalidArgumentError(flag_of(e.field()) + " " + value + ": " + e.problem());
}

}  // namespace

int main(int argc, char** argv) {
  datarax::train::TrainConfig config;
  std::string save_path, metrics_out, plot_path;
  CLI::App app{"datarax-train: data-parallel training of an MLP on MNIST-format data"};
  std::string devices_text, mesh_text, hidden_text = "512,512";
  std::optional<double> momentum, clip_norm;
  std::optional<std::int64_t> steps;
  bool no_shuffle = false, keep_last = false;
  app.add_option("--devices", devices_text, "CPU devices (1..1024; default: DATARAX_NUM_CPU_DEVICES or the core count)");
  app.add_option("--mesh", mesh_text, "the mesh: data=N (default: data-parallel over every device)");
  app.add_option("--epochs", config.epochs, "epochs to train")->capture_default_str();
  app.add_option("--steps", steps, "stop after this many steps");
  app.add_option("--batch-size", config.batch_size, "global batch size, divisible by the data axis")->capture_default_str();
  app.add_flag("--keep-last", keep_last, "keep the last partial batch (padded and masked) instead of dropping it");
  app.add_option("--optimizer", config.optimizer, "sgd, adam or adamw")->capture_default_str();
  app.add_option("--lr", config.lr, "learning rate (the peak, with a schedule)")->capture_default_str();
  app.add_option("--momentum", momentum, "SGD momentum (plain SGD has none unless given)");
  app.add_flag("--nesterov", config.nesterov, "Nesterov momentum (with --momentum)");
  app.add_option("--weight-decay", config.weight_decay, "AdamW weight decay")->capture_default_str();
  app.add_option("--schedule", config.schedule, "constant or warmup_cosine")->capture_default_str();
  app.add_option("--warmup-steps", config.warmup_steps, "warmup steps of warmup_cosine")->capture_default_str();
  app.add_option("--clip-norm", clip_norm, "clip gradients to this global norm");
  app.add_flag("--shard-optimizer-state", config.shard_optimizer_state,
               "ZeRO-1: reduce-scatter gradients, update 1/n of the parameters per device, all-gather");
  app.add_option("--hidden", hidden_text, "hidden layer widths, e.g. 512,512")->capture_default_str();
  app.add_option("--activation", config.activation, "relu or gelu")->capture_default_str();
  app.add_option("--seed", config.seed, "seed of the initialisation and the shuffle")->capture_default_str();
  app.add_option("--data-dir", config.data_dir, "directory of MNIST-format files (default: Debian's Fashion-MNIST)");
  app.add_flag("--no-shuffle", no_shuffle, "take batches in data-set order");
  app.add_option("--init", config.init_path, "initial parameters from a safetensors file");
  app.add_option("--save", save_path, "write the final parameters to a safetensors file");
  app.add_option("--metrics-out", metrics_out, "write metrics as JSON lines");
  app.add_option("--plot", plot_path, "write a PNG of the loss and accuracy curves");
  app.add_option("--log-every", config.log_every, "log (and write metrics) every N steps")->capture_default_str();
  if (auto code = datarax::tools::parse_command_line(app, argc, argv)) return *code;

  return datarax::tools::run_tool("datarax-train", [&] {
    if (!devices_text.empty()) config.devices = datarax::parse_num_cpu_devices(devices_text, "--devices");
    if (!mesh_text.empty()) {
      const auto axes = datarax::tools::parse_mesh_axes(mesh_text, "--mesh");
      if (axes.size() != 1 || axes[0].first != "data")
        throw datarax::InvalidArgumentError("--mesh " + mesh_text +
                                            ": this trainer is data-parallel; the mesh must be data=N");
      config.data_parallel = axes[0].second;
    }
    config.hidden = parse_hidden(hidden_text);
    config.momentum = momentum;
    config.clip_norm = clip_norm;
    config.steps = steps;
    config.shuffle = !no_shuffle;
    config.drop_last = !keep_last;
    try {
      config.validate();
      if (!plot_path.empty()) datarax::tools::check_plot_available(plot_path);

      datarax::tools::ConsoleOutput console(config, stdout);
      datarax::tools::Observers observers;
      observers.add(&console);
      std::optional<datarax::tools::MetricsFile> metrics;
      if (!metrics_out.empty()) observers.add(&metrics.emplace(metrics_out, config.log_every));
      const datarax::train::TrainReport report = datarax::train::train(config, {.observer = &observers});
      // Every process holds the same parameters; process 0 alone writes files.
      if (datarax::process_index() != 0) return;
      if (!plot_path.empty()) {
        datarax::tools::write_plot(report, plot_path);
        std::cout << "plot: " << plot_path << "\n";
      }
      if (!save_path.empty()) {
        datarax::io::save_safetensors(save_path, report.params,
                                      {{"model", report.info.model},
                                       {"steps", std::to_string(report.steps.size())},
                                       {"format", "datarax"}});
        std::cout << "saved: " << save_path << "\n";
      }
    } catch (const datarax::train::ConfigError& e) {
      throw in_flags(e);
    }
  });
}
