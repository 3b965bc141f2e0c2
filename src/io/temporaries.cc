// The temporaries of datarax/io/file.h: names, locks, clean-up (see io/temporaries.h).
#include "io/temporaries.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>

#include "core/splitmix64.h"
#include "core/strings.h"
#include "datarax/io/file.h"
#include "io/file.h"

namespace datarax::io::detail {

namespace {

namespace fs = std::filesystem;
using datarax::detail::file_error;

constexpr std::string_view kMarker = ".datarax-tmp-";
constexpr std::size_t kNameBytes = 32;   // of the target's name, kept for people reading the folder
constexpr std::size_t kRandomDigits = 16;
constexpr mode_t kCreatingFile = 0200, kCreatingFolder = 0500;
constexpr auto kCreatingGrace = std::chrono::seconds(60);

std::string random_digits() {
  static const std::uint64_t seed = [] {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device() ^
           static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
           static_cast<std::uint64_t>(::getpid());
  }();
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t bits = datarax::detail::SplitMix64::mix(seed + counter.fetch_add(1) * datarax::detail::SplitMix64::kGamma);
  char buf[kRandomDigits + 1];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(bits));
  return buf;
}

// The process's umask, read without changing it where Linux tells it (/proc), else by setting and
// restoring it once.
mode_t process_umask() {
  static const mode_t mask = [] {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
    const mode_t m = ::umask(022);
    ::umask(m);
    return m;
  }();
  return mask;
}

// The temporaries this process holds: on file systems whose flock is a POSIX lock (NFS), a lock
// does not keep out another descriptor of the same process, so the clean-up skips these by name.
std::mutex g_held_mutex;
std::set<std::string> g_held;

void hold(const std::string& path) {
  std::lock_guard lock(g_held_mutex);
  g_held.insert(fs::path(path).filename().string());
}
void unhold(const std::string& path) {
  std::lock_guard lock(g_held_mutex);
  g_held.erase(fs::path(path).filename().string());
}
bool held_here(const std::string& name) {
  std::lock_guard lock(g_held_mutex);
  return g_held.count(name) != 0;
}

// Locks `fd` and gives it its real mode. A file system without locks still gets the mode: its
// temporaries are then never taken for stale (the clean-up cannot lock them either).
void lock_and_unmark(int fd, mode_t mode) {
  ::flock(fd, LOCK_EX | LOCK_NB);
  ::fchmod(fd, mode & ~process_umask());
}

// Whether the temporary `path` is stale, and if so removes it (holding its lock meanwhile).
bool remove_if_stale(const fs::path& path) {
  const std::string name = path.filename().string();
  if (held_here(name)) return false;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) return false;
  const mode_t marker = S_ISDIR(st.st_mode) ? kCreatingFolder : kCreatingFile;
  const auto age = std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st.st_mtime);
  if ((st.st_mode & 07777) == marker && age < kCreatingGrace) return false;  // being created, perhaps
  const int fd = ::open(path.c_str(), (S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_NONBLOCK |
                                          O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat opened {};
  bool removed = false;
  if (::fstat(fd, &opened) == 0 && opened.st_dev == st.st_dev && opened.st_ino == st.st_ino &&
      ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
    // Ours now: its writer is gone. Still the same object under that name?
    struct stat again {};
    if (::lstat(path.c_str(), &again) == 0 && again.st_ino == st.st_ino && again.st_dev == st.st_dev) {
      std::error_code ec;
      fs::remove_all(path, ec);
      removed = !ec;
    }
  }
  ::close(fd);
  return removed;
}

}  // namespace

std::string temp_name_for(const std::string& target) {
  const fs::path t(target);
  const std::string full = t.filename().string();
  std::string name = full.substr(0, kNameBytes);
  // Cut at a character's start, not inside a UTF-8 sequence.
  if (full.size() > kNameBytes && (static_cast<unsigned char>(full[kNameBytes]) & 0xC0) == 0x80) {
    while (!name.empty() && (static_cast<unsigned char>(name.back()) & 0xC0) == 0x80) name.pop_back();
    if (!name.empty()) name.pop_back();  // the sequence's first byte
  }
  const fs::path dir = t.has_parent_path() ? t.parent_path() : fs::path(".");
  return (dir / ("." + name + std::string(kMarker) + random_digits())).string();
}

bool is_temp_name(std::string_view filename) {
  const std::size_t at = filename.rfind(kMarker);
  if (filename.size() < 2 || filename[0] != '.' || at == std::string_view::npos || at < 1) return false;
  const std::string_view digits = filename.substr(at + kMarker.size());
  return digits.size() == kRandomDigits && digits.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

int create_held(const std::string& target, HeldTemp::Kind kind, std::string_view op, std::string& path) {
  const std::string folder = fs::path(target).has_parent_path() ? fs::path(target).parent_path().string() : ".";
  int fd = -1;
  for (int attempt = 0;; ++attempt) {
    path = temp_name_for(target);
    if (kind == HeldTemp::Kind::file) {
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kCreatingFile);
    } else if (::mkdir(path.c_str(), kCreatingFolder) == 0) {
      fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        const int err = errno;
        ::rmdir(path.c_str());
        errno = err;
      }
    }
    if (fd >= 0) break;
    if (errno != EEXIST || attempt >= 100)
      throw file_error(op, target, std::string("cannot create a ") + (kind == HeldTemp::Kind::file ? "file" : "folder") +
                                       " in its folder " + datarax::detail::quoted(folder) + ": " + std::strerror(errno));
  }
  hold(path);
  lock_and_unmark(fd, kind == HeldTemp::Kind::file ? 0666 : 0777);
  return fd;
}

void forget_temp(const std::string& path) { unhold(path); }

HeldTemp::HeldTemp(const std::string& target, Kind kind, std::string_view op)
    : fd_(create_held(target, kind, op, path_)) {}

HeldTemp HeldTemp::rename_folder(const std::string& path, std::string_view op) {
  HeldTemp held;
  held.fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (held.fd_ < 0) throw file_error(op, path, std::string("cannot remove: ") + std::strerror(errno));
  ::flock(held.fd_, LOCK_EX | LOCK_NB);
  held.path_ = temp_name_for(path);
  hold(held.path_);
  if (::rename(path.c_str(), held.path_.c_str()) != 0)
    throw file_error(op, path, std::string("cannot remove: ") + std::strerror(errno));
  return held;
}

HeldTemp::HeldTemp(HeldTemp&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
  other.path_.clear();
}

HeldTemp::~HeldTemp() { release(); }

int HeldTemp::release() {
  int rc = 0;
  if (fd_ >= 0) rc = ::close(fd_);
  fd_ = -1;
  if (!path_.empty()) unhold(path_);
  return rc;
}

}  // namespace datarax::io::detail

namespace datarax::io {

namespace fs = std::filesystem;

int remove_stale_temporaries(const std::string& folder) {
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(folder.empty() ? fs::path(".") : fs::path(folder), ec), end; !ec && it != end;
       it.increment(ec))
    if (detail::is_temp_name(it->path().filename().string()) && detail::remove_if_stale(it->path())) ++removed;
  return removed;
}

}  // namespace datarax::io
