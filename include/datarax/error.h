// Error types of datarax: every error the library throws derives from datarax::Error, and every
// one a caller may want to tell apart is declared here, collective and device failures included.
//
// Policy (docs/errors.md): a failure a caller can cause or recover from is an exception whose
// message names the operation, the offending value and the valid range. Library code does not
// exit; the one exception is a multi-process job whose other processes cannot be told of a
// failure any other way (a process that never comes, a collective that cannot finish): that ends
// the job (MPI_Abort), from one function, and docs/errors.md lists when. Errors of other
// libraries (MPI, zlib, the OS) become these types once, at their boundary, with their own text.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "datarax/device.h"

namespace datarax {

// Base of every datarax error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad argument: a size out of range, an unknown name, a shape that does not fit.
class InvalidArgumentError : public Error {
 public:
  using Error::Error;
};

// This machine lacks what the operation needs: an instruction set (nn's bf16 precision on a CPU
// without AVX512_BF16). Not a bad argument: the same call works on another machine.
class UnsupportedError : public Error {
 public:
  using Error::Error;
};

// Typed access with the wrong element type, or an operation on an unsupported dtype.
class DTypeError : public Error {
 public:
  using Error::Error;
};

// A mesh or operation needs more devices than exist.
class NotEnoughDevicesError : public InvalidArgumentError {
 public:
  using InvalidArgumentError::InvalidArgumentError;
};

// A key path missing from a Tree, or present in one tree but not another.
class KeyError : public InvalidArgumentError {
 public:
  using InvalidArgumentError::InvalidArgumentError;
};

// Writing a file failed after its path was accepted: the disk is full, a file-size limit was
// reached, an I/O error. (A path that cannot be written at all is an InvalidArgumentError.)
class IOError : public Error {
 public:
  using Error::Error;
};

// A wait passed its deadline (a collective whose group did not all arrive names the devices that
// did not).
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// A collective failed: its group was aborted because a member failed, or the members' calls did
// not match. Thrown on the devices that called it.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

// The members of a collective's group made different calls at the same step (another kind, op,
// dtype, count, root or axis). Every member finds it and throws it, naming both calls; unlike an
// abort, the group stays in step and may be used again.
class MismatchError : public CollectiveError {
 public:
  using CollectiveError::CollectiveError;
};

// An SPMD function failed on a device (run_spmd, shard_map, pmap). what() names the device and the
// original message; original() is the exception it threw, to rethrow or inspect.
class DeviceError : public Error {
 public:
  DeviceError(Device device, std::exception_ptr original, const std::string& message)
      : Error(message), device_(device), original_(std::move(original)) {}
  const Device& device() const { return device_; }
  const std::exception_ptr& original() const { return original_; }

 private:
  Device device_;
  std::exception_ptr original_;
};

}  // namespace datarax
