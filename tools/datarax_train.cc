// datarax-train: data-parallel training of an MLP on Fashion-MNIST (or any MNIST-format data set)
// over local CPU devices, with the seed's modules.
//
//   datarax-train                                 # the defaults: 10 epochs of Fashion-MNIST
//   datarax-train --devices 2 --epochs 1 --metrics-out m.jsonl --plot curves.png
//   datarax-train --checkpoint-dir ckpts --checkpoint-every 100   # Ctrl-C, then the same with --resume
//
// Exit codes: 0 success, 2 bad arguments or bad input files, 1 anything else, 130 / 143 stopped by
// SIGINT / SIGTERM (after writing a checkpoint when --checkpoint-dir is given; a second signal exits
// at once, leaving only whole files).
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli_parse.h"
#include "datarax/data/mnist.h"
#include "datarax/datarax.h"
#include "datarax/io/file.h"
#include "datarax/io/safetensors.h"
#include "datarax/train/checkpoint.h"
#include "datarax/train/process_agreement.h"
#include "datarax/train/trainer.h"
#include "train_output.h"

namespace {

namespace fs = std::filesystem;
using datarax::InvalidArgumentError;
namespace tools = datarax::tools;

// ---- stops on SIGINT / SIGTERM ----------------------------------------------------------------

datarax::train::StopToken g_stop;
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_signal != 0) std::_Exit(128 + sig);  // the second signal: now (every file is whole or absent)
  g_signal = sig;
  g_stop.request_stop();  // lock-free: safe in a signal handler
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGXFSZ, SIG_IGN);  // past a file-size limit a write fails (and says so) instead
}

// ---- flags --------------------------------------------------------------------------------------

std::vector<int> parse_hidden(const std::string& text) {
  if (text == "none") return {};  // a linear model, asked for by name
  if (text.empty()) throw InvalidArgumentError("--hidden: empty; give layer widths, e.g. 512,512, or none for a linear model");
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    try {
      out.push_back(static_cast<int>(tools::parse_whole(item, "--hidden", 1, 1 << 24)));
    } catch (const InvalidArgumentError&) {
      throw InvalidArgumentError("--hidden: \"" + item + "\" is not a layer width; valid: widths from 1 to " +
                                 std::to_string(1 << 24) + " separated by commas, e.g. 512,512, or none");
    }
    pos = comma + 1;
  }
  return out;
}

// The flag that sets a TrainConfig field: "--" and the field with dashes, but for the few whose
// flags say it differently.
std::string flag_of(const std::string& field) {
  if (field == "data_parallel" || field == "model_parallel" || field == "mesh") return "--mesh";
  if (field == "init_path") return "--init";
  if (field == "model") return "--model";
  if (field == "resume") return "--resume";
  if (field == "metrics_out") return "--metrics-out";
  std::string flag = "--" + field;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// The library names its fields; the user typed flags.
InvalidArgumentError in_flags(const datarax::train::ConfigError& e) {
  const std::string value = e.field() == "data_parallel"    ? "data=" + e.value()
                            : e.field() == "model_parallel" ? "model=" + e.value()
                                                            : e.value();
  return InvalidArgumentError(flag_of(e.field()) + " " + value + ": " + e.problem());
}

struct Outputs {
  std::optional<std::string> save, metrics, plot, checkpoint_dir, resume;
  bool resume_given = false;
  std::int64_t checkpoint_every = 0;
  int keep = 3;
};

// The files a run reads (the --init file, the data folder's files, what --resume names), by
// identity: an output must not replace any of them, whatever path names it (a hard link, "./x",
// another mount of the folder).
std::vector<std::pair<std::string, struct stat>> input_files(const Outputs& o, const datarax::train::TrainConfig& c) {
  std::vector<std::pair<std::string, struct stat>> inputs;
  auto add = [&](const fs::path& path, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) inputs.emplace_back(what + " " + path.string(), st);
  };
  auto add_folder = [&](const fs::path& dir, const std::string& what, int depth) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it.depth() >= depth) it.disable_recursion_pending();
      add(it->path(), what);
    }
  };
  if (!c.init_path.empty()) add(c.init_path, "--init");
  add_folder(c.data_dir.empty() ? datarax::data::kDefaultFashionMnistDir : c.data_dir, "the data file", 1);
  if (o.resume && !o.resume->empty()) {
    add(*o.resume, "--resume");
    add_folder(*o.resume, "--resume's", 2);
  }
  return inputs;
}

void check_not_an_input(const std::string& flag, const std::string& path,
                        const std::vector<std::pair<std::string, struct stat>>& inputs) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // not there yet: no input
  for (const auto& [name, in] : inputs)
    if (in.st_dev == st.st_dev && in.st_ino == st.st_ino)
      throw InvalidArgumentError(flag + " " + path + ": is " + name +
                                 ", an input of this run; an output needs a path of its own");
}

// Every output path is checked before the first step: not empty, not named twice, not an input,
// and writable where process 0 will write it.
void check_outputs(const Outputs& o, const datarax::train::TrainConfig& config) {
  std::vector<std::pair<std::string, std::string>> named;  // flag, path
  for (const auto& [flag, value] : {std::pair{"--save", &o.save}, std::pair{"--metrics-out", &o.metrics},
                                    std::pair{"--plot", &o.plot}, std::pair{"--checkpoint-dir", &o.checkpoint_dir}}) {
    if (!*value) continue;
    if ((*value)->empty()) throw InvalidArgumentError(std::string(flag) + ": the path is empty; give a path");
    named.emplace_back(flag, **value);
  }
  for (std::size_t i = 0; i < named.size(); ++i)
    for (std::size_t j = i + 1; j < named.size(); ++j) {
      std::error_code ea, eb;
      const fs::path a = fs::weakly_canonical(fs::absolute(named[i].second), ea);
      const fs::path b = fs::weakly_canonical(fs::absolute(named[j].second), eb);
      if (!ea && !eb && a == b)
        throw InvalidArgumentError(named[j].first + " " + named[j].second + ": the same path as " + named[i].first +
                                   "; each output needs a path of its own");
    }
  if (o.checkpoint_every != 0 && !o.checkpoint_dir)
    throw InvalidArgumentError("--checkpoint-every needs --checkpoint-dir (where the checkpoints go)");
  if (o.resume_given && o.resume->empty() && !o.checkpoint_dir)
    throw InvalidArgumentError("--resume without a path resumes the latest checkpoint of --checkpoint-dir; give one");
  // Nothing inside a checkpoint folder: its files belong to its checkpoints and its run (a file
  // there could be taken for a checkpoint's, or deleted with one).
  std::string folder;
  if (o.checkpoint_dir) {
    std::error_code ec;
    folder = fs::weakly_canonical(fs::absolute(*o.checkpoint_dir), ec).string();
    const std::string holder = datarax::train::checkpoint_folder_holding(*o.checkpoint_dir);
    if (!holder.empty())
      throw InvalidArgumentError("--checkpoint-dir " + *o.checkpoint_dir + ": inside the checkpoint folder " + holder +
                                 "; give a folder of its own, outside any checkpoint folder");
  }
  for (const auto& [flag, value] : named) {
    if (flag == std::string("--checkpoint-dir")) continue;
    std::error_code ec;
    const std::string at = fs::weakly_canonical(fs::absolute(value), ec).string();
    std::string holder = datarax::train::checkpoint_folder_holding(value);
    if (holder.empty() && !folder.empty() && at.size() > folder.size() && at.compare(0, folder.size(), folder) == 0 && at[folder.size()] == '/')
      holder = folder;
    if (!holder.empty())
      throw InvalidArgumentError(flag + " " + value + ": inside the checkpoint folder " + holder +
                                 ", whose files belong to its checkpoints; write it outside, e.g. next to that folder");
  }
  if (datarax::process_index() != 0) return;  // process 0 alone writes
  const auto inputs = input_files(o, config);
  for (const auto& [flag, value] : {std::pair{"--save", &o.save}, std::pair{"--metrics-out", &o.metrics},
                                    std::pair{"--plot", &o.plot}})
    if (*value) check_not_an_input(flag, **value, inputs);
  if (o.save) datarax::io::check_writable(*o.save, "--save");
  if (o.metrics) datarax::io::check_writable(*o.metrics, "--metrics-out");
  if (o.plot) {
    datarax::io::check_writable(*o.plot, "--plot");
    tools::check_plot_available(*o.plot);
  }
}

// The checkpoint to resume from: --resume PATH (a checkpoint, or a folder of them: its latest), or
// the latest under --checkpoint-dir; "" when there is none there yet (the run starts from step 0).
std::string resume_path(const Outputs& o) {
  if (!o.resume_given) return "";
  std::string path = o.resume->empty() ? datarax::train::latest_checkpoint(*o.checkpoint_dir) : *o.resume;
  if (!o.resume->empty() && !fs::exists(fs::path(path) / "manifest.json")) {
    const std::string latest = datarax::train::latest_checkpoint(path);
    if (latest.empty()) throw InvalidArgumentError("--resume " + path + ": not a checkpoint, nor a folder that holds one");
    path = latest;
  }
  return path;
}

std::optional<datarax::train::TrainState> resume_state(const Outputs& o, const std::string& path) {
  if (!o.resume_given) return std::nullopt;
  if (path.empty()) {
    if (datarax::process_index() == 0)
      std::cout << "resume: no checkpoint in " << *o.checkpoint_dir << " yet; starting from step 0\n";
    return std::nullopt;
  }
  try {
    datarax::train::TrainState state = datarax::train::load_checkpoint(path);
    if (datarax::process_index() == 0)
      std::cout << "resume: " << path << " (step " << state.step << ", epoch " << state.epoch << ")\n";
    return state;
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError("--resume " + path + ": " + e.what());
  }
}

// Under mpirun every process must be given the same outputs, checkpoint folder and checkpoint to
// resume (by its manifest, which holds its files' checksums): compared before anything is read or
// claimed, so that a difference ends the job at once, naming the flag and the processes. (The
// training settings, the --init file and the data are compared by train().)
void check_processes_agree(const Outputs& o, const std::string& resume_from) {
  auto given = [](const std::optional<std::string>& v) { return v ? *v : std::string("(none)"); };
  std::string folder = "(none)";
  if (o.checkpoint_dir) {
    std::error_code ec;
    folder = fs::weakly_canonical(fs::absolute(*o.checkpoint_dir), ec).string();
  }
  const std::string resume =
      !o.resume_given       ? std::string("(not given)")
      : resume_from.empty() ? "the latest of the checkpoint folder (none yet)"
                            : fs::path(resume_from).filename().string() + " (manifest " +
                                  datarax::train::file_digest(resume_from + "/manifest.json") + ")";
  datarax::train::check_processes_agree({{"checkpoint_dir", folder},
                                         {"checkpoint_every", std::to_string(o.checkpoint_every)},
                                         {"keep", std::to_string(o.keep)},
                                         {"resume", resume},
                                         {"save", given(o.save)},
                                         {"metrics_out", given(o.metrics)},
                                         {"plot", given(o.plot)}},
                                        "datarax-train: comparing the processes' flags");
}

// --save, written by process 0; every process learns whether it worked.
void save_parameters(const std::string& path, const datarax::train::BuiltinModel& model,
                     const datarax::train::TrainReport& report) {
  std::string error;
  if (datarax::process_index() == 0) try {
      if (model.name == "gpt")  // GPT-2's layout, its sizes in the metadata
        datarax::train::save_parameters(model, path, report.params);
      else
        datarax::io::save_safetensors(
            path, report.params,
            {{"model", report.info.model}, {"steps", std::to_string(report.final_step)}, {"format", "datarax"}});
    } catch (const std::exception& e) {
      error = e.what();
    }
  const std::string outcome = datarax::process_all_gather(error, "--save")[0];
  if (!outcome.empty()) throw datarax::Error("--save " + path + ": " + outcome);
  if (datarax::process_index() == 0) std::cout << "saved: " << tools::printable(path) << "\n";
}

// The tool's checkpoints: CheckpointDir's, and always one at the final step, written after --save;
// none of the step a run resumed from (that checkpoint is there: a run that trains no step, or is
// stopped before its first, has nothing new to write).
class FinalCheckpoint final : public datarax::train::CheckpointPolicy {
 public:
  FinalCheckpoint(datarax::train::CheckpointDir& dir, std::int64_t resumed_step) : dir_(dir), resumed_(resumed_step) {}
  bool due(std::int64_t step) const override { return dir_.due(step); }
  void save(const datarax::train::TrainState& state) override {
    if (state.step != resumed_) dir_.save(state);
  }
  bool at_end() const override { return true; }

 private:
  datarax::train::CheckpointDir& dir_;
  std::int64_t resumed_;
};

}  // namespace

int main(int argc, char** argv) {
  datarax::train::TrainConfig config;
  Outputs out;
  datarax::train::BuiltinModel model;
  CLI::App app{"datarax-train: training of a built-in model (an MLP or a CNN on MNIST-format data, or a GPT on text), on every layout"};
  std::optional<std::string> devices_text, mesh_text, epochs_text, steps_text, batch_text, lr_text, momentum_text,
      weight_decay_text, warmup_text, clip_text, seed_text, log_every_text, every_text, keep_text, init_text;
  std::optional<std::string> hidden_text;
  bool no_shuffle = false, keep_last = false;
  app.add_option("--devices", devices_text, "CPU devices (1..1024; default: DATARAX_NUM_CPU_DEVICES or the core count)");
  app.add_option("--mesh", mesh_text,
                 "the mesh: data=N, or data=D,model=M (tensor-parallel over model; default: data over every device)");
  app.add_option("--epochs", epochs_text, "epochs to train (default 10; gpt 2)");
  app.add_option("--steps", steps_text, "stop after this many steps in all (a resumed run counts the earlier ones)");
  app.add_option("--batch-size", batch_text, "global batch size, divisible by the data axis (default 256; gpt 64 blocks)");
  app.add_flag("--keep-last", keep_last, "keep the last partial batch (padded and masked) instead of dropping it");
  app.add_option("--optimizer", config.optimizer, "sgd, adam or adamw")->capture_default_str();
  app.add_option("--lr", lr_text, "learning rate (the peak, with a schedule; default 0.001; gpt 0.002)");
  app.add_option("--momentum", momentum_text, "SGD momentum (plain SGD has none unless given)");
  app.add_flag("--nesterov", config.nesterov, "Nesterov momentum (with --momentum)");
  app.add_option("--weight-decay", weight_decay_text, "AdamW weight decay (default 0.0001)");
  app.add_option("--schedule", config.schedule, "constant or warmup_cosine")->capture_default_str();
  app.add_option("--warmup-steps", warmup_text, "warmup steps of warmup_cosine (default 100)");
  app.add_option("--clip-norm", clip_text, "clip gradients to this global norm");
  bool shard_optimizer_state = false, fsdp = false;
  std::optional<std::string> zero_text;
  app.add_flag("--shard-optimizer-state", shard_optimizer_state,
               "ZeRO-1: reduce-scatter gradients, update 1/n of the parameters per device, all-gather "
               "(the default on several devices of one process)");
  app.add_flag("--fsdp", fsdp, "ZeRO-3 (FSDP): parameters, gradients and optimizer state sharded over data");
  app.add_option("--zero-stage", zero_text, "ZeRO stage over data: 0 (replicated), 1, 2 or 3 (the same as --fsdp); default 1 on several "
                 "devices of one process (the same results as 0, less memory), else 0");
  app.add_option("--model", model.name,
                 "mlp, cnn (two 3x3 conv + max-pool blocks, dense 128; Flax's names) or gpt (nanoGPT's GPT-2 on text)")
      ->capture_default_str();
  std::optional<std::string> n_layer_text, n_head_text, n_embd_text, block_text, dropout_text, vocab_text;
  app.add_option("--n-layer", n_layer_text, "gpt: transformer blocks (default 4)");
  app.add_option("--n-head", n_head_text, "gpt: attention heads, dividing --n-embd and the model axis (default 4)");
  app.add_option("--n-embd", n_embd_text, "gpt: the embedding width (default 128)");
  app.add_option("--block-size", block_text, "gpt: the context, in tokens (default 64)");
  app.add_option("--dropout", dropout_text,
                 "gpt: dropout rate in training, 0 <= p < 1 (default 0): nanoGPT's, after the embeddings and on each "
                 "residual branch; the mask follows the step and the example, the same on every layout; none in evaluation");
  app.add_option("--text", model.text, "gpt: train on this text file's bytes (default: Debian's fortunes)");
  app.add_option("--tokens", model.tokens, "gpt: train on nanoGPT's train.bin format (uint16 ids; with --vocab-size)");
  app.add_option("--vocab-size", vocab_text, "gpt: the vocabulary of --tokens");
  app.add_option("--hidden", hidden_text,
                 "hidden layer widths: mlp e.g. 512,512 (the default), or none (a linear model); cnn one width (default 128)");
  app.add_option("--activation", model.activation, "mlp: relu or gelu")->capture_default_str();
  app.add_option("--precision", config.precision,
                 "f32 or bf16: bf16 matrix products (f32 sums, parameters, gradients and optimizer), about "
                 "twice as fast; needs a CPU with AVX512_BF16")
      ->capture_default_str();
  app.add_option("--seed", seed_text, "seed of the initialisation and the shuffle (default 0)");
  app.add_option("--data-dir", config.data_dir, "directory of MNIST-format files (default: Debian's Fashion-MNIST)");
  app.add_flag("--no-shuffle", no_shuffle, "take batches in data-set order");
  app.add_option("--init", init_text, "initial parameters from a safetensors file");
  app.add_option("--save", out.save, "write the final parameters to a safetensors file");
  app.add_option("--metrics-out", out.metrics, "write metrics as JSON lines");
  app.add_option("--plot", out.plot, "write a PNG of the loss and accuracy curves");
  app.add_option("--log-every", log_every_text, "log (and write metrics) every N steps (default 50)");
  app.add_flag("--time-phases", config.time_phases,
               "time each step's phases (GEMMs, element-wise work, collectives, optimizer, ...) and print "
               "their medians at the end");
  app.add_option("--checkpoint-dir", out.checkpoint_dir, "write checkpoints (ckpt-<step>/) into this folder");
  app.add_option("--checkpoint-every", every_text, "a checkpoint every N steps (and when stopped by a signal)");
  app.add_option("--keep", keep_text, "keep the newest K checkpoints (default 3)");
  auto* resume_opt = app.add_option("--resume", out.resume,
                                    "continue from the latest checkpoint of --checkpoint-dir, or from PATH")
                         ->expected(0, 1);
  if (auto code = tools::parse_command_line(app, argc, argv)) return *code;
  install_stop_handlers();

  const int rc = tools::run_tool("datarax-train", [&] {
    datarax::default_collective_timeout();  // a bad DATARAX_COLLECTIVE_TIMEOUT_S fails now, not later
    if (devices_text) config.devices = datarax::parse_num_cpu_devices(*devices_text, "--devices");
    if (mesh_text) {
      const auto axes = tools::parse_mesh_axes(*mesh_text, "--mesh");
      const bool ok = (axes.size() == 1 && axes[0].first == "data") ||
                      (axes.size() == 2 && axes[0].first == "data" && axes[1].first == "model");
      if (!ok)
        throw InvalidArgumentError("--mesh " + *mesh_text +
                                   ": valid meshes are data=N and data=D,model=M (data first, then model)");
      config.data_parallel = axes[0].second;
      if (axes.size() == 2) config.model_parallel = axes[1].second;
    }
    if (static_cast<int>(shard_optimizer_state) + static_cast<int>(fsdp) + static_cast<int>(zero_text.has_value()) > 1)
      throw InvalidArgumentError("--shard-optimizer-state, --fsdp and --zero-stage each set the ZeRO stage; give one");
    if (shard_optimizer_state) config.zero_stage = 1;
    if (fsdp) config.zero_stage = 3;
    if (zero_text) config.zero_stage = static_cast<int>(tools::parse_whole(*zero_text, "--zero-stage", 0, 3));
    if (model.name == "gpt") {  // the GPT's own defaults: 2 epochs of 64 blocks a step at a peak lr of 2e-3
      config.epochs = 2;
      config.batch_size = 64;
      config.lr = 2e-3;
    }
    if (epochs_text) config.epochs = static_cast<int>(tools::parse_whole(*epochs_text, "--epochs", 1, 1 << 30));
    if (steps_text) config.steps = tools::parse_whole(*steps_text, "--steps", 1, INT64_MAX / 4);
    if (batch_text) config.batch_size = tools::parse_whole(*batch_text, "--batch-size", 1, INT64_MAX / 4);
    if (lr_text) config.lr = tools::parse_real(*lr_text, "--lr", 0, false, 1e6);
    if (momentum_text) config.momentum = tools::parse_real(*momentum_text, "--momentum", 0, true, 0.999999);
    if (weight_decay_text) config.weight_decay = tools::parse_real(*weight_decay_text, "--weight-decay", 0, true, 1e6);
    if (warmup_text) config.warmup_steps = tools::parse_whole(*warmup_text, "--warmup-steps", 0, INT64_MAX / 4);
    if (clip_text) config.clip_norm = tools::parse_real(*clip_text, "--clip-norm", 0, false, 1e30);
    // An option the chosen optimizer or schedule does not use would be silently ignored: refused.
    if (weight_decay_text && (config.optimizer == "sgd" || config.optimizer == "adam"))
      throw InvalidArgumentError("--weight-decay " + *weight_decay_text + ": applies to --optimizer adamw only (this run's is " +
                                 config.optimizer + "); drop it, or use --optimizer adamw");
    if (warmup_text && config.schedule == "constant")
      throw InvalidArgumentError("--warmup-steps " + *warmup_text + ": applies to --schedule warmup_cosine only (this run's is " +
                                 config.schedule + "); drop it, or use --schedule warmup_cosine");
    if (seed_text) config.seed = tools::parse_unsigned(*seed_text, "--seed");
    if (log_every_text) config.log_every = tools::parse_whole(*log_every_text, "--log-every", 1, INT64_MAX / 4);
    if (init_text) {
      if (init_text->empty()) throw InvalidArgumentError("--init: the path is empty; give a safetensors file");
      config.init_path = *init_text;
    }
    if (every_text) out.checkpoint_every = tools::parse_whole(*every_text, "--checkpoint-every", 1, INT64_MAX / 4);
    if (keep_text) out.keep = static_cast<int>(tools::parse_whole(*keep_text, "--keep", 1, 1 << 20));
    out.resume_given = resume_opt->count() > 0;
    if (out.resume_given && !out.resume) out.resume = "";
    if (hidden_text) model.hidden = parse_hidden(*hidden_text);
    if (n_layer_text) model.n_layer = tools::parse_whole(*n_layer_text, "--n-layer", 1, 1024);
    if (n_head_text) model.n_head = tools::parse_whole(*n_head_text, "--n-head", 1, 4096);
    if (n_embd_text) model.n_embd = tools::parse_whole(*n_embd_text, "--n-embd", 1, 1 << 16);
    if (block_text) model.block_size = tools::parse_whole(*block_text, "--block-size", 1, 1 << 20);
    if (dropout_text) model.dropout = tools::parse_real(*dropout_text, "--dropout", 0, true, 1, /*max_inclusive=*/false);
    if (vocab_text) model.vocab_size = tools::parse_whole(*vocab_text, "--vocab-size", 1, 65536);
    if (model.name != "gpt" && (n_layer_text || n_head_text || n_embd_text || block_text || dropout_text || vocab_text))
      throw InvalidArgumentError("--n-layer, --n-head, --n-embd, --block-size, --dropout and --vocab-size apply to --model gpt; this run's model is " +
                                 model.name);
    config.shuffle = !no_shuffle;
    config.drop_last = !keep_last;
    try {
      config.validate();
      model.validate();
      datarax::initialize({.num_cpu_devices = config.devices});
      const std::string resume_from = resume_path(out);
      check_processes_agree(out, resume_from);
      check_outputs(out, config);
      const std::optional<datarax::train::TrainState> resume = resume_state(out, resume_from);
      // The folder claimed for this run before the first step (a refusal says what to do instead).
      std::optional<datarax::train::CheckpointDir> checkpoints;
      if (out.checkpoint_dir)
        checkpoints.emplace(*out.checkpoint_dir, out.checkpoint_every > 0 ? out.checkpoint_every : INT64_MAX, out.keep,
                            resume ? &*resume : nullptr, resume_from);
      std::optional<FinalCheckpoint> final_checkpoint;
      if (checkpoints) final_checkpoint.emplace(*checkpoints, resume ? resume->step : -1);

      tools::ConsoleOutput console(config, stdout);
      tools::Observers observers;
      observers.add(&console);
      std::optional<tools::MetricsFile> metrics;
      if (out.metrics && datarax::process_index() == 0) observers.add(&metrics.emplace(*out.metrics, config.log_every));
      // The outputs in order of worth: --save, the final checkpoint (both inside train(), at its
      // end), the metrics, the plot. Each is attempted even when an earlier one failed; the first
      // failure is reported once all are done.
      std::string failure;
      auto attempt = [&failure](const std::function<void()>& write) {
        try {
          write();
        } catch (const std::exception& e) {
          if (failure.empty()) failure = e.what();
        }
      };
      const datarax::train::TrainReport report = datarax::train::train(
          model, config, {.observer = &observers,
                   .checkpoint = final_checkpoint ? &*final_checkpoint : nullptr,
                   .stop = &g_stop,
                   .resume = resume ? &*resume : nullptr,
                   .on_trained = [&](const datarax::train::TrainReport& r) {
                     if (out.save) attempt([&] { save_parameters(*out.save, model, r); });
                   }});
      if (metrics) attempt([&] { metrics->commit(); });
      if (out.plot && datarax::process_index() == 0)
        attempt([&] {
          tools::write_plot(report, *out.plot);
          std::cout << "plot: " << tools::printable(*out.plot) << "\n";
        });
      if (report.stopped && datarax::process_index() == 0) {
        std::cout << "stopped at step " << report.final_step;
        if (checkpoints)
          std::cout << "; checkpoint " << tools::printable(checkpoints->last_saved())
                    << "; continue with the same command and --resume";
        else
          std::cout << "; no checkpoint (give --checkpoint-dir to be able to continue a stopped run)";
        if (out.save) std::cout << "; --save " << tools::printable(*out.save) << " not written (the run did not finish)";
        std::cout << "\n";
      }
      if (!failure.empty()) throw datarax::Error(failure);
    } catch (const datarax::train::ConfigError& e) {
      throw in_flags(e);
    }
  });
  std::cout << std::flush;
  if (rc == 0 && g_signal != 0) return 128 + g_signal;  // stopped by SIGINT (130) or SIGTERM (143)
  return rc;
}
