#include "io/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

namespace datarax::detail {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

const char* kind_of(unsigned mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

InvalidArgumentError file_error(std::string_view op, std::string_view path,
                                std::string_view problem) {
  return InvalidArgumentError(std::string(op) + ": " + detail::quoted(path) + ": " + std::string(problem));
}

InputFile::InputFile(std::string path, std::string op) : path_(std::move(path)), op_(std::move(op)) {
  // Opened without blocking: a FIFO (or a device) would block open() until a writer came, forever.
  // Only a regular file is read; the descriptor then blocks as usual.
  fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) throw file_error(op_, path_, "cannot open for reading: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw file_error(op_, path_, "cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw file_error(op_, path_, std::string("is ") + kind_of(st.st_mode) + ", not a regular file");
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  device_ = static_cast<std::uint64_t>(st.st_dev);
  inode_ = static_cast<std::uint64_t>(st.st_ino);
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

}  // namespace datarax::detail
