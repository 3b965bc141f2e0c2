#include "cli_parse.h"

#include <charconv>
#include <iostream>

#include "datarax/error.h"
#include "datarax/device_discovery.h"

namespace datarax::tools {

namespace {

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
  try {
    body();
  } catch (const InvalidArgumentError& e) {
    std::cerr << name << ": " << e.what() << "\n";
    end_job_if_multi_process(2);  // under mpirun: the other processes would wait for this one
    return 2;
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    end_job_if_multi_process(1);
    return 1;
  }
  return 0;
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
