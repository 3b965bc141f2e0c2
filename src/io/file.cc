#include "io/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/strings.h"

namespace datarax::detail {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

InvalidArgumentError file_error(std::string_view op, std::string_view path,
                                std::string_view problem) {
  return InvalidArgumentError(std::string(op) + ": " + detail::quoted(path) + ": " + std::string(problem));
}

InputFile::InputFile(std::string path, std::string op) : path_(std::move(path)), op_(std::move(op)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw file_error(op_, path_, "cannot open for reading: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw file_error(op_, path_, "cannot stat: " + errno_text(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd_);
    throw file_error(op_, path_, "is a directory, not a file");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t InputFile::read(std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd_, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw file_error(op_, path_, "read failed: " + errno_text(errno));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void InputFile::read_at(std::uint64_t offset, std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw file_error(op_, path_, "read failed: " + errno_text(errno));
    }
    if (n == 0)
      throw file_error(op_, path_,
                       "the file ended at byte " + std::to_string(offset + done) +
                           " while reading up to byte " + std::to_string(offset + out.size()) +
                           " (did it shrink while being read?)");
    done += static_cast<std::size_t>(n);
  }
}

void OutputFile::write(std::span<const std::byte> bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw file_error(op_, path_,
                       "write failed after " + std::to_string(written_ + done) +
                           " bytes: " + errno_text(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  written_ += done;
}

void write_file_atomically(const std::string& path, std::string_view op,
                           const std::function<void(OutputFile&)>& fill) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.filename().empty())
    throw file_error(op, path, "names a directory (ends with '/'); expected a file path");
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");

  // A name no other writer uses: pid plus a per-process counter, created with O_EXCL.
  static std::atomic<unsigned> counter{0};
  std::string temp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    temp = (dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                   std::to_string(counter.fetch_add(1))))
               .string();
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt >= 100))
      throw file_error(op, path,
                       "cannot create a temporary file in directory " + detail::quoted(dir.string()) +
                           ": " + errno_text(errno));
  }

  try {
    OutputFile out(fd, op, temp);
    fill(out);
    if (::fsync(fd) != 0) throw file_error(op, temp, "fsync failed: " + errno_text(errno));
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw file_error(op, temp, "close failed: " + errno_text(errno));
    if (::rename(temp.c_str(), path.c_str()) != 0)
      throw file_error(op, path,
                       "cannot rename the temporary file " + detail::quoted(temp) + " over it: " +
                           errno_text(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }

  // Persist the rename itself. Best effort: the new file is complete either way, and some file
  // systems cannot fsync a directory.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace datarax::detail
