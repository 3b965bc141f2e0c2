#include "cli_parse.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <iostream>

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

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return std::nullopt;
}

int run_tool(const char* name, const std::function<void()>& body) {
  // Under mpirun several processes print to one terminal: each error line names its process.
  auto report = [&](const std::exception& e) {
    std::string line = std::string(name) + ": ";
    if (is_initialized() && process_count() > 1) line += "process " + std::to_string(process_index()) + ": ";
    std::cerr << line + e.what() + "\n" << std::flush;
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

double parse_real(const std::string& text, const std::string& flag, double min, bool min_inclusive, double max) {
  char* end = nullptr;
  errno = 0;
  const double value = text.empty() ? 0 : std::strtod(text.c_str(), &end);
  const std::string range = std::string(min_inclusive ? "from " : "above ") + detail_number(min) + " up to " + detail_number(max);
  if (text.empty() || end != text.c_str() + text.size() || std::isspace(static_cast<unsigned char>(text[0])))
    throw InvalidArgumentError(flag + ": \"" + text + "\" is not a number; valid: a finite number " + range);
  if (!std::isfinite(value) || errno == ERANGE || value > max || value < min || (!min_inclusive && value == min))
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
