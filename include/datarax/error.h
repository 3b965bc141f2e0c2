// Error types of datarax.
//
// Policy (after Gloo's docs/errors.md): every failure a caller can cause or recover from is an
// exception derived from datarax::Error, whose message names the operation, the offending value and
// the valid range. Library code never exits or aborts. Errors of other libraries (MPI, CUDA, the
// OS) are turned into these types once, at their boundary, with the other library's own text.
#pragma once

#include <stdexcept>
#include <string>

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

// A wait passed its deadline.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

}  // namespace datarax
