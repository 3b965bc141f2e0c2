#include "cli_parse.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "datarax/error.h"
#include "datarax/device_discovery.h"

namespace datarax::tools {

namespace {

std::string detail_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

int parse_size(std::string_view text, const std::string& flag, const std::string& what) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < 1)
    throw InvalidArgumentError(flag + ": " + what + " \"" + std::string(text) +
                               "\" is not a size; sizes are whole numbers >= 1");
  return value;
}

}  // namespace

std::string printable(std::string_view text, bool keep_newlines) {
  std::string out;
  auto hex = [&out](unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' && keep_newlines) {
      out += '\n';
    } else if (c < 0x20 || c == 0x7f) {
      hex(c);
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {  // U+0080..U+009F, the C1 controls
      hex(c);
      hex(static_cast<unsigned char>(text[++i]));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11's message quotes what was typed: printed with its control characters escaped.
    std::ostringstream message;
    app.exit(e, message, message);
    std::cerr << printable(message.str(), true) << std::flush;
    return 2;
  }
  return std::nullopt;
}

int run_tool(const char* name, const std::function<void()>& body) {
  // Under mpirun several processes print to one terminal: each error line names its process.
  auto report = [&](const std::exception& e) {
    std::string line = std::string(name) + ": ";
    if (is_initialized() && process_count() > 1) line += "process " + std::to_string(process_index()) + ": ";
    std::cerr << printable(line + e.what(), true) + "\n" << std::flush;
  };
  try {
    body();
  } catch (const InvalidArgumentError& e) {
    report(e);
    end_job_if_multi_process(2);  // under mpirun: the other processes would wait for this one
    return 2;
  } catch (const std::exception& e) {
    report(e);
    end_job_if_multi_process(1);
    return 1;
  }
  return 0;
}

std::int64_t parse_whole(const std::string& text, const std::string& flag, std::int64_t min, std::int64_t max) {
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string range = "a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != text.data() + text.size())
    throw InvalidArgumentError(flag + ": \"" + text + "\" is not a whole number; valid: " + range);
  if (ec == std::errc::result_out_of_range || value < min || value > max)
    throw InvalidArgumentError(flag + ": " + text + " is out of range; valid: " + range);
  return value;
}

std::uint64_t parse_unsigned(const std::string& text, const std::string& flag) {
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string range = "a whole number from 0 to 18446744073709551615";
  if (text.empty() || ec == std::errc::invalid_argument || ptr != text.data() + text.size())
    throw InvalidArgumentError(flag + ": \"" + text + "\" is not a whole number; valid: " + range);
  if (ec == std::errc::result_out_of_range) throw InvalidArgumentError(flag + ": " + text + " is out of range; valid: " + range);
  return value;
}

double parse_real(const std::string& text, const std::string& flag, double min, bool min_inclusive, double max,
                  bool max_inclusive) {
  // Decimal notation only (digits, a point, an exponent): not hex ("0x10"), not inf or nan, no
  // sign but '-', no spaces, nothing after the number. strtod would take all of those.
  double value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::general);
  const std::string range = std::string(min_inclusive ? "from " : "above ") + detail_number(min) +
                            (max_inclusive ? " up to " : " to below ") + detail_number(max);
  const bool decimal = !text.empty() && text.find_first_not_of("0123456789.eE+-") == std::string::npos;
  if (!decimal || ec == std::errc::invalid_argument || ptr != text.data() + text.size())
    throw InvalidArgumentError(flag + ": \"" + text + "\" is not a number; valid: a decimal number " + range +
                               " (e.g. 0.001 or 1e-3)");
  if (ec == std::errc::result_out_of_range || !std::isfinite(value) || value > max || value < min ||
      (!min_inclusive && value == min) || (!max_inclusive && value == max))
    throw InvalidArgumentError(flag + ": " + text + " is out of range; valid: a finite number " + range);
  return value;
}

std::vector<MeshAxis> parse_mesh_axes(const std::string& text, const std::string& flag) {
  const std::string usage = "; expected NAME=SIZE[,NAME=SIZE...], e.g. data=2,model=4";
  std::vector<MeshAxis> axes;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InvalidArgumentError(flag + ": \"" + item + "\" is not an axis" + usage);
    for (const char c : item.substr(0, eq))
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        throw InvalidArgumentError(flag + ": the axis name \"" + item.substr(0, eq) +
                                   "\" holds a control character; axis names are printable text");
    axes.emplace_back(item.substr(0, eq),
                      parse_size(std::string_view(item).substr(eq + 1), flag, "axis size"));
    pos = comma + 1;
  }
  return axes;
}

std::pair<int, int> parse_hybrid(const std::string& text, const std::string& flag) {
  const std::size_t x = text.find('x');
  if (x == std::string::npos)
    throw InvalidArgumentError(flag + ": \"" + text +
                               "\" is not a hybrid shape; expected DATAxMODEL, e.g. 2x4");
  return {parse_size(std::string_view(text).substr(0, x), flag, "data size"),
          parse_size(std::string_view(text).substr(x + 1), flag, "model size")};
}

}  // namespace datarax::tools
