// Skipping a test that cannot run here, without letting the test command skip it.
//
// A test that needs something the machine may lack (the Fashion-MNIST package, a process of its
// own) skips with the reason when run by hand. Under the project's test command
// (scripts/test.sh exports DATARAX_STRICT_TESTS=1), which installs everything and runs every test
// in a process of its own, the same condition is a failure: CI never skips such a test silently.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "datarax/data/mnist.h"

namespace datarax::test {

inline bool strict_tests() {
  const char* v = std::getenv("DATARAX_STRICT_TESTS");
  return v != nullptr && std::string(v) == "1";
}

inline bool have_fashion_mnist() {
  return std::filesystem::exists(std::string(data::kDefaultFashionMnistDir) + "/train-labels-idx1-ubyte.gz") ||
         std::filesystem::exists(std::string(data::kDefaultFashionMnistDir) + "/train-labels-idx1-ubyte");
}

}  // namespace datarax::test

// Skips the test with `reason` when `condition` holds, or fails it under the test command.
#define DATARAX_SKIP_IF(condition, reason)                                                   \
  do {                                                                                       \
    if (condition) {                                                                         \
      if (::datarax::test::strict_tests()) FAIL() << (reason) << " (DATARAX_STRICT_TESTS=1)"; \
      GTEST_SKIP() << (reason);                                                              \
    }                                                                                        \
  } while (false)

// The tests on the real Fashion-MNIST data.
#define DATARAX_NEEDS_FASHION_MNIST()                                                                         \
  DATARAX_SKIP_IF(!::datarax::test::have_fashion_mnist(),                                                    \
                  std::string(::datarax::data::kDefaultFashionMnistDir) +                                    \
                      " is absent: Debian's dataset-fashion-mnist package installs it (scripts/install-deps.sh)")
