// A file's size and XXH3-64 checksum (libxxhash), read once in pieces: what a checkpoint's manifest
// records per tensor file, and what processes compare of an input.
#pragma once

#include <cstdint>
#include <string>

namespace datarax::train::detail {

struct FileHash {
  std::uint64_t bytes = 0;
  std::uint64_t xxh3 = 0;
};

// InvalidArgumentError (the path and the OS's reason) when `path` cannot be opened or read, or is
// not a regular file (opened without blocking: a FIFO never hangs it).
FileHash hash_file(const std::string& path);

// 16 lowercase hex digits.
std::string hex64(std::uint64_t x);

}  // namespace datarax::train::detail
