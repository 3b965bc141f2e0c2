// Internal: POSIX file access for io's readers (the writers are public: datarax/io/file.h).
//
// The OS's errors are turned into datarax errors here, once, with strerror's text: every message
// reads `<op>: "<path>": <what went wrong>`, so a caller three layers up still learns which
// operation failed on which file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "datarax/error.h"

namespace datarax::detail {

// The error every file problem becomes: `<op>: "<path>": <problem>`.
InvalidArgumentError file_error(std::string_view op, std::string_view path,
                                std::string_view problem);

// What a file of st_mode `mode` is, for messages: "a folder", "a FIFO", "a character device"...
const char* kind_of(unsigned mode);

// A file open for reading. Not copyable; closes on destruction.
class InputFile {
 public:
  // Throws file_error (naming op and path, with strerror's text) when the file cannot be opened,
  // or is not a regular file (a directory, a FIFO, a device, a socket). Never blocks in open().
  InputFile(std::string path, std::string op);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  const std::string& op() const { return op_; }
  // Bytes in the file when it was opened.
  std::uint64_t size() const { return size_; }
  // The file's identity (st_dev, st_ino), to tell whether an output would replace it.
  std::uint64_t device() const { return device_; }
  std::uint64_t inode() const { return inode_; }

  // Reads up to out.size() bytes from the current position; fewer only at the end of the file
  // (0 there). Read errors throw.
  std::size_t read(std::span<std::byte> out);
  // Reads exactly out.size() bytes at `offset`, without moving the current position; the caller
  // has checked the range against size(), so a short read is an error (the file shrank).
  void read_at(std::uint64_t offset, std::span<std::byte> out);

 private:
  int fd_ = -1;
  std::string path_;
  std::string op_;
  std::uint64_t size_ = 0, device_ = 0, inode_ = 0;
};

}  // namespace datarax::detail
