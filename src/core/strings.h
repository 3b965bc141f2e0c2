// Internal string helpers for error messages and to_string().
#pragma once

#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace datarax::detail {

template <class Range, class Fn>
std::string join(const Range& items, std::string_view sep, Fn&& fn) {
  std::string out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += sep;
    first = false;
    out += fn(item);
  }
  return out;
}

inline std::string join(const std::vector<std::string>& items, std::string_view sep) {
  return join(items, sep, [](const std::string& s) { return s; });
}

// The items joined by ", ", or "(none)".
inline std::string list_or_none(const std::vector<std::string>& items) {
  return items.empty() ? std::string("(none)") : join(items, ", ");
}

inline std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The shortest text that reads back as x ("0.5", "1e-08").
inline std::string number(double x) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
}

// The message of an exception: what() of a std::exception, or a placeholder for anything else.
inline std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// A duration for messages: "300 s", "0.5 s" (three significant digits).
inline std::string seconds(std::chrono::milliseconds t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(t.count()) / 1000.0);
  return buf;
}

}  // namespace datarax::detail
