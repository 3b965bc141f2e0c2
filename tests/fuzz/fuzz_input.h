// What the fuzz targets share: the bytes of one input as a file that a reader opens by path
// (memfd: no disk, no file left behind), and the one way an input may fail — a datarax::Error, the
// library's clear error. Anything else (a crash, another exception, a sanitizer report) is a bug.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "datarax/error.h"

namespace datarax::fuzz {

// The input as a file: "/proc/self/fd/N" of one memfd, rewritten for every input.
inline std::string as_file(const std::uint8_t* data, std::size_t size) {
  static const int fd = ::memfd_create("datarax-fuzz", MFD_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, 0) != 0) throw std::runtime_error("memfd");
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) throw std::runtime_error("memfd write");
    done += static_cast<std::size_t>(n);
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

// Runs fn; a datarax::Error (bad input, named) is an expected outcome.
template <class Fn>
int expect_errors_only(Fn&& fn) {
  try {
    fn();
  } catch (const datarax::Error&) {
  }
  return 0;
}

}  // namespace datarax::fuzz
