// Parsing of the mesh arguments the command-line tools share: "data=2,model=4" and "2x4".
// Errors are datarax::InvalidArgumentError with a message that says what is valid.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "datarax/mesh.h"

namespace datarax::tools {

// Parses argv into `app`. Returns the code to exit with when the tool should stop here (0 after
// --help, 2 for bad arguments, CLI11's message printed), or nothing to go on.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// Runs a tool's body and turns its errors into exit codes: datarax::InvalidArgumentError (bad
// input) prints "name: message" and gives 2; any other exception gives 1; success 0.
int run_tool(const char* name, const std::function<void()>& body);

// Numbers from the command line, strictly: the whole text must be the number, in range, or
// InvalidArgumentError names the flag, the text and the range. (CLI11's own conversions clamp a
// number beyond 64 bits and wrap "-1" into an unsigned one.)
std::int64_t parse_whole(const std::string& text, const std::string& flag, std::int64_t min, std::int64_t max);
std::uint64_t parse_unsigned(const std::string& text, const std::string& flag);
// A finite real number above `min` (or from it, with min_inclusive) and up to `max` (or below it,
// with max_inclusive false).
double parse_real(const std::string& text, const std::string& flag, double min, bool min_inclusive, double max,
                  bool max_inclusive = true);

// `text` as the tools print it: control characters (C0, DEL and C1 in UTF-8) as \xNN, so that a
// name cannot move the cursor, clear the screen or retitle the terminal; newlines kept when
// `keep_newlines` (text the tool itself laid out in lines).
std::string printable(std::string_view text, bool keep_newlines = false);

// "data=2,model=4" -> {{"data", 2}, {"model", 4}}.
std::vector<MeshAxis> parse_mesh_axes(const std::string& text, const std::string& flag);
// "2x4" -> {2, 4}.
std::pair<int, int> parse_hybrid(const std::string& text, const std::string& flag);

}  // namespace datarax::tools
