// error_of(fn): the message of the datarax::Error that fn throws, or "(no error)".
// Lets a test state the exact text a user sees: EXPECT_THAT(error_of([&] { ... }), HasSubstr(...)).
#pragma once

#include <string>

#include "datarax/error.h"

namespace datarax::test {

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace datarax::test
