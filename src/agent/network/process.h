// Running the helper programs the network layer drives (CNI plugins, iptables-save and
// iptables-restore): a program, its environment and standard input in; exit code, standard
// output and standard error out.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace skiff::agent::network {

struct ProcessResult {
  int exit_code = -1;      // the exit status, or 128 + signal when killed by one
  bool timed_out = false;  // killed (SIGKILL) because it ran past the deadline
  std::string stdout_text;
  std::string stderr_text;
};

// Runs `argv[0]` (an absolute path, or a name searched on PATH) with exactly `env` as its
// environment ("NAME=value" entries) and `input` on its standard input, and waits for it or
// for `timeout` to pass, whichever comes first (then it is killed). Returns Unavailable when
// the program cannot be started (missing, not executable). Thread-safe; leaks no descriptors
// into other children and does not touch the process's signal dispositions.
Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env, std::string_view input,
                                  std::chrono::milliseconds timeout);

// The environment to hand to helpers that need the usual tools: PATH (the process's own, or
// the standard system PATH when it has none), plus `extra`.
std::vector<std::string> helper_environment(const std::vector<std::string>& extra);

}  // namespace skiff::agent::network
