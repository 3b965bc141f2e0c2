#include "datarax/train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "datarax/device_discovery.h"
#include "datarax/io/file.h"
#include "datarax/io/safetensors.h"
#include "datarax/process_collectives.h"
#include "datarax/version.h"

namespace datarax::train {

namespace {

namespace fs = std::filesystem;


constexpr const char* kFormat = "datarax-checkpoint";
constexpr int kFormatVersion = 1;
constexpr const char* kPrefix = "ckpt-";

// The step of a folder named ckpt-<digits>, or -1.
std::int64_t step_of(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0 || name.size() == 5 || name.size() > 5 + 18) return -1;
  const std::string digits = name.substr(5);
  if (digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

// Committed checkpoints of `dir`, by step, oldest first.
std::vector<std::pair<std::int64_t, fs::path>> committed(const std::string& dir) {
  std::vector<std::pair<std::int64_t, fs::path>> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::int64_t step = step_of(it->path().filename().string());
    std::error_code e2;
    if (step >= 0 && it->is_directory(e2) && fs::is_regular_file(it->path() / "manifest.json", e2))
      out.emplace_back(step, it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_text(const std::string& path, std::uintmax_t limit) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw InvalidArgumentError("load_checkpoint: " + datarax::detail::quoted(path) + ": " + ec.message());
  if (size > limit)
    throw InvalidArgumentError("load_checkpoint: " + datarax::detail::quoted(path) + ": " + std::to_string(size) +
                               " bytes; a manifest has at most " + std::to_string(limit));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw InvalidArgumentError("load_checkpoint: " + datarax::detail::quoted(path) + ": cannot read");
  return text.str();
}

}  // namespace

std::string manifest_json(const TrainState& s) {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["format_version"] = kFormatVersion;
  j["library"] = kVersionString;
  j["step"] = s.step;
  j["epoch"] = s.epoch;
  j["step_in_epoch"] = s.step_in_epoch;
  j["epoch_totals"] = {{"loss", s.epoch_loss}, {"correct", s.epoch_correct}, {"count", s.epoch_count}};
  j["must_match"] = s.must_match;
  j["layout"] = s.layout;
  j["files"] = {{"params", "params.safetensors"}, {"optimizer", "optimizer.safetensors"}};
  return j.dump(2) + "\n";
}

void parse_manifest(const std::string& text, TrainState& state, const std::string& source) {
  auto bad = [&](const std::string& problem) {
    return InvalidArgumentError("load_checkpoint: " + datarax::detail::quoted(source) + ": " + problem);
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("not JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw bad("not a JSON object");
  auto field = [&](const char* key) -> const nlohmann::json& {
    const auto it = j.find(key);
    if (it == j.end()) throw bad(std::string("no \"") + key + "\"");
    return *it;
  };
  auto whole = [&](const nlohmann::json& v, const char* key, std::int64_t lo, std::int64_t hi) {
    if (!v.is_number_integer()) throw bad(std::string("\"") + key + "\" is not a whole number");
    const auto x = v.get<std::int64_t>();
    if (x < lo || x > hi)
      throw bad(std::string("\"") + key + "\" = " + std::to_string(x) + " is out of range " + std::to_string(lo) + ".." +
                std::to_string(hi));
    return x;
  };
  if (field("format") != kFormat) throw bad("\"format\" is not \"" + std::string(kFormat) + "\"");
  if (whole(field("format_version"), "format_version", 1, 1000) != kFormatVersion)
    throw bad("format_version " + field("format_version").dump() + "; this library reads " + std::to_string(kFormatVersion));
  state.step = whole(field("step"), "step", 0, INT64_MAX / 2);
  state.epoch = static_cast<int>(whole(field("epoch"), "epoch", 1, INT32_MAX));
  state.step_in_epoch = whole(field("step_in_epoch"), "step_in_epoch", 0, state.step);
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
}

void save_checkpoint(const std::string& path, const TrainState& state) {
  io::write_folder_atomically(path, "save_checkpoint", [&](const std::string& temp) {
    io::save_safetensors(temp + "/params.safetensors", state.params, {{"format", "datarax"}});
    io::save_safetensors(temp + "/optimizer.safetensors", state.opt_state, {{"format", "datarax"}});
    io::write_file_atomically(temp + "/manifest.json", "save_checkpoint",
                              [&](io::AtomicFile& f) { f.write(manifest_json(state)); });
  });
}

TrainState load_checkpoint(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    throw InvalidArgumentError("load_checkpoint: " + datarax::detail::quoted(path) + " is not a checkpoint folder (ckpt-<step>/)");
  TrainState state;
  parse_manifest(read_text(path + "/manifest.json", 1 << 20), state, path + "/manifest.json");
  state.params = io::load_safetensors(path + "/params.safetensors");
  state.opt_state = io::load_safetensors(path + "/optimizer.safetensors");
  return state;
}

std::string latest_checkpoint(const std::string& dir) {
  const auto all = committed(dir);
  return all.empty() ? std::string() : all.back().second.string();
}

CheckpointDir::CheckpointDir(std::string dir, std::int64_t every, int keep) : dir_(std::move(dir)), every_(every), keep_(keep) {
  if (every_ < 1) throw InvalidArgumentError("CheckpointDir: every = " + std::to_string(every_) + " steps; valid: 1 or more");
  if (keep_ < 1) throw InvalidArgumentError("CheckpointDir: keep = " + std::to_string(keep_) + "; valid: 1 or more");
  if (process_index() == 0) {
    io::check_writable_folder(dir_, "checkpoint folder");
    io::remove_stale_temporaries(dir_);
  }
}

void CheckpointDir::save(const TrainState& state) {
  if (state.step == last_step_) return;
  const std::string path = (fs::path(dir_) / (kPrefix + std::to_string(state.step))).string();
  // Process 0 writes; every process learns how that went, and fails with it.
  std::string error;
  if (process_index() == 0) {
    try {
      save_checkpoint(path, state);
      const auto all = committed(dir_);
      // Renamed away first: a delete cut short leaves a stale temporary (removed at the next
      // start), never a half-deleted folder named like a checkpoint.
      for (std::size_t i = 0; i + static_cast<std::size_t>(keep_) < all.size(); ++i)
        io::remove_folder(all[i].second.string(), "save_checkpoint");
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  const std::vector<std::string> outcome = process_all_gather(error, "save_checkpoint");
  if (!outcome[0].empty())
    throw Error(process_index() == 0 ? outcome[0] : "save_checkpoint: process 0 could not write " + path + ": " + outcome[0]);
  last_step_ = state.step;
  last_saved_ = path;
}

}  // namespace datarax::train
