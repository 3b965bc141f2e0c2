// The one way the tools start another program (today gnuplot, for --plot): no shell, no file
// names and no environment of ours reach it. Its input comes through a socket on its stdin, its
// output is read back from its stdout, and it gets an empty environment, its own process group
// (a Ctrl-C at the terminal is ours to handle) and a deadline.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace datarax::tools {

struct ProgramResult {
  int status = -1;   // the exit status; 128 + the signal that ended it; -1 when it could not start
  std::string out;   // its stdout (at most max_output bytes)
  std::string err;   // the end of its stderr (at most 4 KiB), for messages
  bool timed_out = false;
};

// The executable `name` in PATH's folders (PATH, or /usr/local/bin:/usr/bin:/bin), or "".
std::string find_program(const std::string& name);

// Runs `argv` (argv[0] the executable's path), writes `input` to its stdin and collects its stdout
// until it exits. Past `deadline` it is killed (SIGKILL) and timed_out is set; output beyond
// `max_output` bytes kills it too (status then reports the signal).
ProgramResult run_program(const std::vector<std::string>& argv, std::string_view input,
                          std::chrono::milliseconds deadline, std::size_t max_output);

}  // namespace datarax::tools
