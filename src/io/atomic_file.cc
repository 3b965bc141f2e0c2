// The writers of datarax/io/file.h: temporaries next to their targets, fsync, rename.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/strings.h"
#include "datarax/io/file.h"
#include "io/file.h"
#include "io/temporaries.h"

namespace datarax::io {

namespace {

namespace fs = std::filesystem;
using datarax::detail::file_error;
using datarax::detail::kind_of;

// A write that failed once its path was accepted: `<op>: "<path>": <problem>`.
IOError io_error(std::string_view op, std::string_view path, const std::string& problem) {
  return IOError(std::string(op) + ": " + datarax::detail::quoted(path) + ": " + problem);
}


std::string errno_text(int err) { return std::strerror(err); }

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

}  // namespace

AtomicFile::AtomicFile(std::string path, std::string op) : path_(std::move(path)), op_(std::move(op)) {
  check_target(path_, op_);
  remove_stale_temporaries(folder_of(fs::path(path_)).string());
  fd_ = detail::create_held(path_, detail::HeldTemp::Kind::file, op_, temp_);
}

AtomicFile::~AtomicFile() {
  if (!temp_.empty()) ::unlink(temp_.c_str());  // before the lock goes: no one else removes it
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) detail::forget_temp(temp_);
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
  if (fd_ < 0) throw file_error(op_, path_, "commit after the file was committed or abandoned");
  sync();
  check_target(path_, op_);  // nothing but a regular file appeared there meanwhile
  // Renamed while its lock is held (the descriptor still open): until then it is a live writer's.
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    throw io_error(op_, path_, "cannot rename the temporary " + datarax::detail::quoted(temp_) + " over it: " + errno_text(errno));
  detail::forget_temp(temp_);
  temp_.clear();
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) throw io_error(op_, path_, "close failed after it was written and synced: " + errno_text(errno));
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
  detail::HeldTemp held(path, detail::HeldTemp::Kind::folder, op);
  const std::string& temp = held.path();
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
  // Renamed and removed under its lock: cut short, the next writer in the folder finishes it.
  const detail::HeldTemp held = detail::HeldTemp::rename_folder(path, op);
  const std::string& doomed = held.path();
  std::error_code ec;
  fs::remove_all(doomed, ec);
  if (ec) throw file_error(op, path, "removing " + datarax::detail::quoted(doomed) + " failed: " + ec.message());
}

void check_writable(const std::string& path, std::string_view op) {
  check_target(path, op);
  remove_stale_temporaries(folder_of(fs::path(path)).string());  // the start of a run cleans up
  std::string probe;
  const int fd = detail::create_held(path, detail::HeldTemp::Kind::file, op, probe);
  ::unlink(probe.c_str());
  ::close(fd);
  detail::forget_temp(probe);
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

}  // namespace datarax::io
