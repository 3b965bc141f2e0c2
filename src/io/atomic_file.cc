// The writers of datarax/io/file.h: temporaries next to their targets, fsync, rename.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/strings.h"
#include "datarax/io/file.h"
#include "io/file.h"

namespace datarax::io {

namespace {

namespace fs = std::filesystem;
using datarax::detail::file_error;

// A write that failed once its path was accepted: `<op>: "<path>": <problem>`.
IOError io_error(std::string_view op, std::string_view path, const std::string& problem) {
  return IOError(std::string(op) + ": " + datarax::detail::quoted(path) + ": " + problem);
}


std::string errno_text(int err) { return std::strerror(err); }

// This host's name as it goes into temporary names (letters, digits, '-' and '.'), so that a
// writer on another host sharing the folder never takes our temporaries for its own.
const std::string& host_tag() {
  static const std::string tag = [] {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return std::string("host");
    std::string out;
    for (const char* p = buf; *p; ++p) out += std::isalnum(static_cast<unsigned char>(*p)) || *p == '-' || *p == '.' ? *p : '_';
    return out.empty() ? std::string("host") : out;
  }();
  return tag;
}

// ".<name>.tmp-<host>-<pid>-": what every temporary of a target starts with, but for its counter.
std::string temp_prefix(const fs::path& target, const std::string& host, long pid) {
  return "." + target.filename().string() + ".tmp-" + host + "-" + std::to_string(pid) + "-";
}

std::string next_temp(const fs::path& target) {
  static std::atomic<unsigned> counter{0};
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  return (dir / (temp_prefix(target, host_tag(), ::getpid()) + std::to_string(counter.fetch_add(1)))).string();
}

fs::path folder_of(const fs::path& target) { return target.has_parent_path() ? target.parent_path() : fs::path("."); }

void fsync_path(const std::string& path, int flags, std::string_view op) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw file_error(op, path, "cannot open to fsync: " + errno_text(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems cannot fsync a folder (EINVAL); a file's fsync must work.
  if (rc != 0 && !((flags & O_DIRECTORY) && err == EINVAL)) throw io_error(op, path, "fsync failed: " + errno_text(err));
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// Throws unless `path` is absent or a regular file, and its folder is a folder.
void check_target(const std::string& path, std::string_view op) {
  const fs::path target(path);
  if (path.empty()) throw InvalidArgumentError(std::string(op) + ": the path is empty; expected a file path");
  if (target.filename().empty()) throw file_error(op, path, "names a folder (ends with '/'); expected a file path");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode))
      throw file_error(op, path, std::string("exists and is ") + kind_of(st.st_mode) + ", not a regular file; " +
                                     "name a new file or a regular file to replace");
  } else if (errno != ENOENT) {
    throw file_error(op, path, "cannot inspect: " + errno_text(errno));
  }
  const std::string folder = folder_of(target).string();
  if (::stat(folder.c_str(), &st) != 0) throw file_error(op, path, "its folder " + datarax::detail::quoted(folder) + ": " + errno_text(errno));
  if (!S_ISDIR(st.st_mode)) throw file_error(op, path, "its parent " + datarax::detail::quoted(folder) + " is not a folder");
}

int create_temp(const std::string& path, std::string& temp, std::string_view op) {
  for (int attempt = 0;; ++attempt) {
    temp = next_temp(fs::path(path));
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST || attempt >= 100)
      throw file_error(op, path, "cannot create a file in its folder " + datarax::detail::quoted(folder_of(fs::path(path)).string()) + ": " +
                                     errno_text(errno));
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path, std::string op) : path_(std::move(path)), op_(std::move(op)) {
  check_target(path_, op_);
  remove_stale_temporaries(folder_of(fs::path(path_)).string());
  fd_ = create_temp(path_, temp_, op_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  if (fd_ < 0) throw file_error(op_, path_, "write after the file was committed or abandoned");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error(op_, path_, "write failed after " + std::to_string(written_ + done) + " bytes: " + errno_text(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  written_ += done;
}

void AtomicFile::sync() {
  if (fd_ >= 0 && ::fsync(fd_) != 0) throw io_error(op_, path_, "fsync failed: " + errno_text(errno));
}

void AtomicFile::commit() {
  sync();
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) throw io_error(op_, path_, "close failed: " + errno_text(errno));
  check_target(path_, op_);  // nothing but a regular file appeared there meanwhile
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    throw io_error(op_, path_, "cannot rename the temporary " + datarax::detail::quoted(temp_) + " over it: " + errno_text(errno));
  temp_.clear();
  fsync_path(folder_of(fs::path(path_)).string(), O_RDONLY | O_DIRECTORY, op_);
}

void write_file_atomically(const std::string& path, std::string_view op, const std::function<void(AtomicFile&)>& fill) {
  AtomicFile file(path, std::string(op));
  fill(file);
  file.commit();
}

void write_folder_atomically(const std::string& path, std::string_view op,
                             const std::function<void(const std::string& temp_folder)>& fill) {
  const fs::path target(path);
  if (path.empty()) throw InvalidArgumentError(std::string(op) + ": the path is empty; expected a folder path");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) throw file_error(op, path, std::string("exists already (") + kind_of(st.st_mode) + ")");
  remove_stale_temporaries(folder_of(target).string());
  std::string temp;
  for (int attempt = 0;; ++attempt) {
    temp = next_temp(target);
    if (::mkdir(temp.c_str(), 0777) == 0) break;
    if (errno != EEXIST || attempt >= 100)
      throw file_error(op, path, "cannot create a folder in " + datarax::detail::quoted(folder_of(target).string()) + ": " + errno_text(errno));
  }
  try {
    fill(temp);
    for (const auto& entry : fs::directory_iterator(temp))
      if (entry.is_regular_file()) fsync_path(entry.path().string(), O_RDONLY, op);
    fsync_path(temp, O_RDONLY | O_DIRECTORY, op);
    if (::rename(temp.c_str(), path.c_str()) != 0)
      throw file_error(op, path, "cannot rename the temporary folder " + datarax::detail::quoted(temp) + " to it: " + errno_text(errno));
  } catch (...) {
    std::error_code ec;
    fs::remove_all(temp, ec);
    throw;
  }
  fsync_path(folder_of(target).string(), O_RDONLY | O_DIRECTORY, op);
}

void remove_folder(const std::string& path, std::string_view op) {
  const std::string doomed = next_temp(fs::path(path));
  if (::rename(path.c_str(), doomed.c_str()) != 0) throw file_error(op, path, "cannot remove: " + errno_text(errno));
  std::error_code ec;
  fs::remove_all(doomed, ec);
  if (ec) throw file_error(op, path, "removing " + datarax::detail::quoted(doomed) + " failed: " + ec.message());
}

void check_writable(const std::string& path, std::string_view op) {
  check_target(path, op);
  std::string probe;
  const int fd = create_temp(path, probe, op);
  ::close(fd);
  ::unlink(probe.c_str());
}

void check_writable_folder(const std::string& path, std::string_view op) {
  if (path.empty()) throw InvalidArgumentError(std::string(op) + ": the path is empty; expected a folder");
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(path, ec);
  if (fs::exists(status) && !fs::is_directory(status))
    throw file_error(op, path, "exists and is not a folder");
  if (!fs::exists(status) && (fs::create_directories(path, ec), ec))
    throw file_error(op, path, "cannot create the folder: " + ec.message());
  check_writable((fs::path(path) / "probe").string(), op);
}

int remove_stale_temporaries(const std::string& folder) {
  const std::string marker = ".tmp-" + host_tag() + "-";
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(folder.empty() ? fs::path(".") : fs::path(folder), ec), end; !ec && it != end;
       it.increment(ec)) {
    // ".<name>.tmp-<host>-<pid>-<n>": the pid and the counter are whole numbers.
    const std::string name = it->path().filename().string();
    const std::size_t at = name.rfind(marker);
    if (name.size() < 2 || name[0] != '.' || at == std::string::npos || at < 2) continue;
    const std::string rest = name.substr(at + marker.size());
    const std::size_t dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == rest.size() ||
        rest.find_first_not_of("0123456789-") != std::string::npos || rest.find('-', dash + 1) != std::string::npos ||
        dash > 9)
      continue;
    const long pid = std::stol(rest.substr(0, dash));
    // Only a process that is gone (ESRCH); a live one, or one we may not signal (EPERM), keeps it.
    if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    fs::remove_all(it->path(), rm);
    if (!rm) ++removed;
  }
  return removed;
}

}  // namespace datarax::io
