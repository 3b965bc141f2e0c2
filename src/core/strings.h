// Internal string helpers for error messages and to_string().
#pragma once

#include <charconv>
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

inline std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The shortest text that reads back as x ("0.5", "1e-08").
inline std::string number(double x) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
}

}  // namespace datarax::detail
