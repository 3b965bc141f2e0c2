#include "datarax/train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "datarax/io/file.h"
#include "datarax/io/safetensors.h"
#include "datarax/optim/optimizer.h"
#include "datarax/version.h"
#include "train/file_hash.h"

namespace datarax::train {

namespace {

namespace fs = std::filesystem;
const auto quoted = [](std::string_view s) { return datarax::detail::quoted(s); };

constexpr const char* kFormat = "datarax-checkpoint";
// 2: the run's id, steps per epoch, and each tensor file's size and XXH3-64 checksum.
constexpr int kFormatVersion = 2;
constexpr const char* kParams = "params.safetensors";
constexpr const char* kOptimizer = "optimizer.safetensors";

std::string read_text(const std::string& path, std::uintmax_t limit) {
  std::error_code ec;
  // (A FIFO or a device would block the read, or never end.)
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
    throw InvalidArgumentError("load_checkpoint: " + quoted(path) + ": not a regular file");
  const auto size = fs::file_size(path, ec);
  if (ec) throw InvalidArgumentError("load_checkpoint: " + quoted(path) + ": " + ec.message());
  if (size > limit)
    throw InvalidArgumentError("load_checkpoint: " + quoted(path) + ": " + std::to_string(size) +
                               " bytes; a manifest has at most " + std::to_string(limit));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw InvalidArgumentError("load_checkpoint: " + quoted(path) + ": cannot read");
  return text.str();
}

bool is_hex(const std::string& s, std::size_t min, std::size_t max) {
  return s.size() >= min && s.size() <= max && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

nlohmann::ordered_json file_entry(const char* name, const TensorFile& f) {
  return {{"name", name}, {"bytes", f.bytes}, {"xxh3_64", detail::hex64(f.xxh3)}};
}

// The file's size and checksum against its manifest's record; InvalidArgumentError naming the file.
void verify(const std::string& path, const TensorFile& want) {
  detail::FileHash got;
  try {
    got = detail::hash_file(path);
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(std::string("load_checkpoint: ") + e.what());
  }
  if (got.bytes != want.bytes)
    throw InvalidArgumentError("load_checkpoint: " + quoted(path) + ": " + std::to_string(got.bytes) +
                               " bytes; its manifest records " + std::to_string(want.bytes) +
                               " (the file was cut short or replaced)");
  if (got.xxh3 != want.xxh3)
    throw InvalidArgumentError("load_checkpoint: " + quoted(path) + ": its XXH3-64 checksum is " + detail::hex64(got.xxh3) +
                               "; its manifest records " + detail::hex64(want.xxh3) + " (the file is damaged or was replaced)");
}

}  // namespace

std::string manifest_json(const TrainState& s, const ManifestFiles& files) {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["format_version"] = kFormatVersion;
  j["library"] = kVersionString;
  j["run"] = s.run;
  j["step"] = s.step;
  j["epoch"] = s.epoch;
  j["step_in_epoch"] = s.step_in_epoch;
  j["steps_per_epoch"] = s.steps_per_epoch;
  j["epoch_totals"] = {{"loss", s.epoch_loss}, {"correct", s.epoch_correct}, {"count", s.epoch_count}};
  j["must_match"] = s.must_match;
  j["layout"] = s.layout;
  j["files"] = {{"params", file_entry(kParams, files.params)}, {"optimizer", file_entry(kOptimizer, files.optimizer)}};
  return j.dump(2) + "\n";
}

void parse_manifest(const std::string& text, TrainState& state, ManifestFiles& files, const std::string& source) {
  auto bad = [&](const std::string& problem) {
    return InvalidArgumentError("load_checkpoint: " + quoted(source) + ": " + problem);
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("not JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw bad("not a JSON object");
  auto field_in = [&](const nlohmann::json& o, const std::string& key) -> const nlohmann::json& {
    const auto it = o.find(key);
    if (it == o.end()) throw bad("no \"" + key + "\"");
    return *it;
  };
  auto field = [&](const char* key) -> const nlohmann::json& { return field_in(j, key); };
  auto whole = [&](const nlohmann::json& v, const std::string& key, std::int64_t lo, std::int64_t hi) {
    if (!v.is_number_integer()) throw bad("\"" + key + "\" is not a whole number");
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
      throw bad("\"" + key + "\" = " + v.dump() + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
    const auto x = v.get<std::int64_t>();
    if (x < lo || x > hi)
      throw bad("\"" + key + "\" = " + std::to_string(x) + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
    return x;
  };
  if (field("format") != kFormat) throw bad("\"format\" is not \"" + std::string(kFormat) + "\"");
  if (whole(field("format_version"), "format_version", 1, 1000) != kFormatVersion)
    throw bad("format_version " + field("format_version").dump() + "; this library reads " + std::to_string(kFormatVersion));
  const nlohmann::json& run = field("run");
  if (!run.is_string() || !is_hex(run.get<std::string>(), 1, 64))
    throw bad("\"run\" is not a run id (1 to 64 lowercase hex digits)");
  state.run = run.get<std::string>();
  state.step = whole(field("step"), "step", 0, INT64_MAX / 2);
  state.epoch = static_cast<int>(whole(field("epoch"), "epoch", 1, INT32_MAX));
  state.steps_per_epoch = whole(field("steps_per_epoch"), "steps_per_epoch", 1, INT64_MAX / 2);
  state.step_in_epoch = whole(field("step_in_epoch"), "step_in_epoch", 0, std::min(state.step, state.steps_per_epoch));
  // The counters against each other: step = (epoch - 1) x steps_per_epoch + step_in_epoch.
  const std::int64_t before = state.step - state.step_in_epoch;  // steps of the epochs before
  if (before % state.steps_per_epoch != 0 || before / state.steps_per_epoch != state.epoch - 1)
    throw bad("\"epoch\" " + std::to_string(state.epoch) + " and \"step_in_epoch\" " + std::to_string(state.step_in_epoch) +
              " do not match \"step\" " + std::to_string(state.step) + " at " + std::to_string(state.steps_per_epoch) +
              " \"steps_per_epoch\" (step = (epoch - 1) x steps_per_epoch + step_in_epoch)");
  const nlohmann::json& totals = field("epoch_totals");
  if (!totals.is_object()) throw bad("\"epoch_totals\" is not an object");
  for (const char* key : {"loss", "correct", "count"}) {
    const auto it = totals.find(key);
    if (it == totals.end() || !it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0)
      throw bad(std::string("\"epoch_totals\".\"") + key + "\" is not a finite number >= 0");
  }
  state.epoch_loss = totals["loss"].get<double>();
  state.epoch_correct = totals["correct"].get<double>();
  state.epoch_count = totals["count"].get<double>();
  if (state.epoch_correct > state.epoch_count)
    throw bad("\"epoch_totals\": \"correct\" " + datarax::detail::number(state.epoch_correct) + " exceeds \"count\" " +
              datarax::detail::number(state.epoch_count));
  if (state.step_in_epoch == 0 && (state.epoch_count != 0 || state.epoch_loss != 0))
    throw bad("\"epoch_totals\" are not 0 at \"step_in_epoch\" 0");
  if (state.step_in_epoch > 0 && state.epoch_count == 0)
    throw bad("\"epoch_totals\".\"count\" is 0 after " + std::to_string(state.step_in_epoch) + " steps of the epoch");
  for (const char* key : {"must_match", "layout"}) {
    const nlohmann::json& m = field(key);
    if (!m.is_object()) throw bad(std::string("\"") + key + "\" is not an object");
    auto& out = std::string(key) == "must_match" ? state.must_match : state.layout;
    out.clear();
    for (const auto& [k, v] : m.items()) {
      if (!v.is_string()) throw bad(std::string("\"") + key + "\".\"" + k + "\" is not a string");
      out[k] = v.get<std::string>();
    }
  }
  const nlohmann::json& listed = field("files");
  if (!listed.is_object() || listed.size() != 2) throw bad("\"files\" is not an object of \"params\" and \"optimizer\"");
  for (const auto& [key, name, out] : {std::tuple{"params", kParams, &files.params}, std::tuple{"optimizer", kOptimizer, &files.optimizer}}) {
    const std::string where = std::string("\"files\".\"") + key + "\"";
    const nlohmann::json& f = field_in(listed, key);
    if (!f.is_object() || f.size() != 3) throw bad(where + " is not an object of \"name\", \"bytes\" and \"xxh3_64\"");
    if (field_in(f, "name") != name) throw bad(where + ".\"name\" is not \"" + std::string(name) + "\"");
    out->bytes = static_cast<std::uint64_t>(whole(field_in(f, "bytes"), where + ".\"bytes\"", 0, INT64_MAX / 2));
    const nlohmann::json& sum = field_in(f, "xxh3_64");
    if (!sum.is_string() || !is_hex(sum.get<std::string>(), 16, 16))
      throw bad(where + ".\"xxh3_64\" is not 16 lowercase hex digits");
    out->xxh3 = std::stoull(sum.get<std::string>(), nullptr, 16);
  }
}

void save_checkpoint(const std::string& path, const TrainState& state) {
  TrainState named = state;  // (Arrays are handles: no tensor is copied)
  if (named.run.empty()) named.run = new_run_id();
  io::write_folder_atomically(path, "save_checkpoint", [&](const std::string& temp) {
    ManifestFiles files;
    io::save_safetensors(temp + "/" + kParams, state.params, {{"format", "datarax"}});
    io::save_safetensors(temp + "/" + kOptimizer, state.opt_state, {{"format", "datarax"}});
    // The checksums of the files as written (read back: what a resume will read).
    for (const auto& [name, out] : {std::pair{kParams, &files.params}, std::pair{kOptimizer, &files.optimizer}}) {
      const detail::FileHash h = detail::hash_file(temp + "/" + name);
      *out = {h.bytes, h.xxh3};
    }
    // What a resume will check, checked before it is committed: an inconsistent state is the
    // writer's error, not a checkpoint that can never be read.
    const std::string text = manifest_json(named, files);
    TrainState parsed;
    ManifestFiles parsed_files;
    try {
      parse_manifest(text, parsed, parsed_files, path + "/manifest.json");
    } catch (const InvalidArgumentError& e) {
      throw InvalidArgumentError(std::string("save_checkpoint: the state would not resume: ") + e.what());
    }
    io::write_file_atomically(temp + "/manifest.json", "save_checkpoint", [&](io::AtomicFile& f) { f.write(text); });
  });
}

TrainState load_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    throw InvalidArgumentError("load_checkpoint: " + quoted(path) + " is not a checkpoint folder (ckpt-<step>/)");
  TrainState state;
  ManifestFiles files;
  parse_manifest(read_text(path + "/manifest.json", 1 << 20), state, files, path + "/manifest.json");
  const std::string params = path + "/" + kParams, optimizer = path + "/" + kOptimizer;
  verify(params, files.params);
  verify(optimizer, files.optimizer);
  state.params = io::load_safetensors(params);
  state.opt_state = io::load_safetensors(optimizer);
  // The tensors against the manifest: the optimizer's update count is the step.
  std::int64_t updates = -1;
  try {
    updates = optim::step_count(state.opt_state);
  } catch (const std::exception& e) {
    throw InvalidArgumentError("load_checkpoint: " + quoted(optimizer) + ": " + e.what());
  }
  if (updates != state.step)
    throw InvalidArgumentError("load_checkpoint: " + quoted(optimizer) + ": the optimizer has made " + std::to_string(updates) +
                               " updates; the manifest's \"step\" is " + std::to_string(state.step));
  return state;
}

}  // namespace datarax::train
