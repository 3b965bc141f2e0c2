// CheckpointDir: a checkpoint folder owned by one run (datarax/train/checkpoint_dir.h).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "datarax/device_discovery.h"
#include "datarax/io/file.h"
#include "datarax/process_collectives.h"
#include "datarax/train/checkpoint.h"
#include "train/file_hash.h"

namespace datarax::train {

namespace {

namespace fs = std::filesystem;
const auto quoted = [](std::string_view s) { return datarax::detail::quoted(s); };

constexpr const char* kPrefix = "ckpt-";
constexpr const char* kLock = "datarax.lock";
constexpr const char* kRecord = "datarax-run.json";

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

// A small JSON file's object, or an empty one when it cannot be read or parsed.
nlohmann::json read_json(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) > (1 << 20)) return nlohmann::json::object();
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : nlohmann::json::object();
}

// The run a checkpoint belongs to (its manifest's "run"), or "" when unknown.
std::string run_of(const fs::path& checkpoint) {
  const nlohmann::json j = read_json(checkpoint / "manifest.json");
  const auto it = j.find("run");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string host_name() {
  char host[256] = {};
  return ::gethostname(host, sizeof host - 1) == 0 ? std::string(host) : std::string("?");
}

// "ckpt-100 .. ckpt-200, 2 checkpoints".
std::string describe(const std::vector<std::pair<std::int64_t, fs::path>>& all) {
  const std::string first = all.front().second.filename().string(), last = all.back().second.filename().string();
  return all.size() == 1 ? first : first + " .. " + last + ", " + std::to_string(all.size()) + " checkpoints";
}

bool same_folder(const std::string& a, const std::string& b) {
  std::error_code ea, eb;
  return fs::equivalent(a, b, ea) && !ea && !eb;
}

}  // namespace

std::string new_run_id() {
  std::random_device source;  // the system's random source (/dev/urandom)
  std::string id;
  for (int i = 0; i < 2; ++i)
    id += detail::hex64((static_cast<std::uint64_t>(source()) << 32) ^ static_cast<std::uint64_t>(source()));
  return id;
}

std::string latest_checkpoint(const std::string& dir) {
  const auto all = committed(dir);
  return all.empty() ? std::string() : all.back().second.string();
}

std::string checkpoint_folder_holding(const std::string& path) {
  std::error_code ec;
  fs::path at = fs::weakly_canonical(fs::absolute(path, ec), ec).parent_path();
  for (; !at.empty(); at = at.parent_path()) {
    std::error_code e2;
    if ((step_of(at.filename().string()) >= 0 && fs::is_regular_file(at / "manifest.json", e2)) ||
        fs::exists(fs::symlink_status(at / kLock, e2)) || fs::exists(fs::symlink_status(at / kRecord, e2)))
      return at.string();
    if (at == at.root_path()) break;
  }
  return "";
}

CheckpointDir::CheckpointDir(std::string dir, std::int64_t every, int keep, const TrainState* resumed,
                             const std::string& resumed_from)
    : dir_(std::move(dir)), every_(every), keep_(keep) {
  if (every_ < 1) throw InvalidArgumentError("CheckpointDir: every = " + std::to_string(every_) + " steps; valid: 1 or more");
  if (keep_ < 1) throw InvalidArgumentError("CheckpointDir: keep = " + std::to_string(keep_) + "; valid: 1 or more");
  // Process 0 claims the folder; every process learns the outcome (a run id, or the refusal as
  // "field\nvalue\nproblem") and fails with it.
  std::string outcome;
  if (process_index() == 0) {
    try {
      claim(resumed, resumed_from);
      outcome = "ok\n" + run_;
    } catch (const ConfigError& e) {
      outcome = e.field() + "\n" + e.value() + "\n" + e.problem();
    } catch (const std::exception& e) {
      outcome = "checkpoint_dir\n" + dir_ + "\n" + e.what();
    }
  }
  const std::string result = process_all_gather(outcome, "CheckpointDir: claiming the checkpoint folder")[0];
  if (result.rfind("ok\n", 0) == 0) {
    run_ = result.substr(3);
    return;
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
  const std::size_t a = result.find('\n'), b = result.find('\n', a + 1);
  throw ConfigError(result.substr(0, a), result.substr(a + 1, b - a - 1), result.substr(b + 1));
}

CheckpointDir::~CheckpointDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

void CheckpointDir::claim(const TrainState* resumed, const std::string& resumed_from) {
  auto refuse = [&](const std::string& problem) { return ConfigError("checkpoint_dir", dir_, problem); };
  std::error_code ec;
  // A symbolic link to a folder is the folder (the checks below refuse links at a file's place).
  const std::string real = fs::is_symlink(dir_, ec) && fs::is_directory(dir_, ec) ? fs::canonical(dir_, ec).string() : dir_;
  io::check_writable_folder(real, "checkpoint folder");
  // The lock: an flock on a file that stays (never replaced: the lock is on its inode).
  const std::string lock_path = (fs::path(real) / kLock).string();
  lock_path_ = lock_path;
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (lock_fd_ < 0) throw refuse("cannot open its lock " + quoted(lock_path) + ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    char holder[256] = {};
    const ssize_t n = ::pread(lock_fd_, holder, sizeof holder - 1, 0);
    std::string who = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : std::string();
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (e != EWOULDBLOCK) throw refuse("cannot lock " + quoted(lock_path) + ": " + std::strerror(e));
    throw refuse("in use by another run (" + (who.empty() ? std::string("its lock is held") : who) +
                 "); wait for that run to end, or give this run a folder of its own");
  }
  // Held: whoever wrote the file before is gone (a dead process's lock is released by the kernel).
  const std::string me = "process " + std::to_string(::getpid()) + " on host " + host_name();
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, (me + "\n").data(), me.size() + 1, 0) < 0)
    throw refuse("cannot write its lock " + quoted(lock_path) + ": " + std::strerror(errno));

  const auto all = committed(real);
  if (resumed == nullptr) {
    if (!all.empty()) {
      const std::string theirs = run_of(all.back().second);
      throw refuse("holds checkpoints of another run (" + describe(all) + (theirs.empty() ? "" : " of run " + theirs) +
                   "); continue that run by resuming its latest checkpoint, or start this one in an empty folder");
    }
    run_ = new_run_id();
  } else {
    if (!all.empty() && !same_folder(fs::absolute(resumed_from).parent_path().string(), real))
      throw refuse("holds checkpoints (" + describe(all) +
                   ") and this run resumes another folder's checkpoint; continue this folder's run by resuming its "
                   "latest (" + all.back().second.filename().string() + "), or write this run's checkpoints to an empty folder");
    if (!all.empty() && !same_folder(resumed_from, all.back().second.string()))
      throw ConfigError("resume", resumed_from,
                        "not the latest checkpoint of the checkpoint folder " + quoted(dir_) + " (" +
                            all.back().second.filename().string() +
                            " is): resuming an older one would write another history of the same steps over "
                            "it; resume the latest, or write this run's checkpoints to an empty folder");
    run_ = resumed->run.empty() ? new_run_id() : resumed->run;
    // The checkpoint resumed is this folder's: its step is not written again.
    if (!all.empty()) last_step_ = resumed->step;
  }
  io::write_file_atomically((fs::path(real) / kRecord).string(), "checkpoint folder", [&](io::AtomicFile& f) {
    nlohmann::ordered_json j;
    j["format"] = "datarax-checkpoint-folder";
    j["run"] = run_;
    j["claimed_by"] = me;
    f.write(j.dump(2) + "\n");
  });
  io::remove_stale_temporaries(real);
}

void CheckpointDir::keep_lock() {
  struct stat held {}, there {};
  if (::fstat(lock_fd_, &held) == 0 && ::stat(lock_path_.c_str(), &there) == 0 && held.st_ino == there.st_ino &&
      held.st_dev == there.st_dev)
    return;
  // The lock file was removed (or replaced) during the run: a lock on a file nobody can open keeps
  // nobody out. Take the one there now, or fail if another run holds it.
  const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd < 0)
    throw Error("save_checkpoint: the checkpoint folder " + quoted(dir_) + "'s lock file was removed during this run and "
                "cannot be made again (" + std::strerror(errno) + "; was the folder removed?); stopping");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw Error("save_checkpoint: the checkpoint folder " + quoted(dir_) + "'s lock file was removed during this run, "
                "and another run holds the new one; stopping, with this run's checkpoints as they are");
  }
  ::close(lock_fd_);
  lock_fd_ = fd;
  const std::string me = "process " + std::to_string(::getpid()) + " on host " + host_name() + "\n";
  if (::pwrite(lock_fd_, me.data(), me.size(), 0) < 0) {
    // (informational only: the flock is what counts)
  }
}

void CheckpointDir::save(const TrainState& state) {
  if (state.step == last_step_) return;
  const std::string path = (fs::path(dir_) / (kPrefix + std::to_string(state.step))).string();
  // Process 0 writes; every process learns how that went, and fails with it.
  std::string error;
  if (process_index() == 0) {
    try {
      keep_lock();
      TrainState stamped = state;  // (Arrays are handles: no tensor is copied)
      stamped.run = run_;
      save_checkpoint(path, stamped);
      const auto all = committed(dir_);
      std::vector<fs::path> mine;
      for (const auto& [step, folder] : all)
        if (run_of(folder) == run_) mine.push_back(folder);
      // Renamed away first: a delete cut short leaves a stale temporary (removed at the next
      // start), never a half-deleted folder named like a checkpoint.
      for (std::size_t i = 0; i + static_cast<std::size_t>(keep_) < mine.size(); ++i)
        io::remove_folder(mine[i].string(), "save_checkpoint");
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
