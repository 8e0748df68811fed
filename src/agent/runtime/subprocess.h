// Starting helper programs (runc, conmon) with chosen file descriptors; private to the runtime.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace skiff::agent::runtime::internal {

struct SpawnOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // the whole environment of the child
  // Descriptors of this process that the child gets, as (our fd, child's fd). Child fds 0-2
  // not listed are /dev/null; every other descriptor is closed in the child.
  std::vector<std::pair<int, int>> fds;
  bool new_session = false;  // setsid(), and the child's stdin as its controlling terminal
  std::string working_dir;   // the child's working directory; empty: this process's
};

// fork + exec; returns the child's pid. Everything the child runs between fork and exec is
// async-signal-safe, so this may be called from any thread.
Result<pid_t> spawn(const SpawnOptions& options);

struct CommandResult {
  int exit_code = 0;  // 128+signal when killed by one
  std::string out;
  std::string err;
};

// Runs a command to completion and collects its output. Timeout (after SIGKILL) when it runs
// longer than `timeout`.
Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout);

// The exit code of a wait status: the status, or 128+signal.
int exit_code_of(int wait_status);

// Waits for a child to exit within `timeout`; the exit code, or Timeout.
Result<int> wait_child(pid_t pid, std::chrono::milliseconds timeout);

// The environment for helpers: PATH only.
std::vector<std::string> helper_env();

}  // namespace skiff::agent::runtime::internal
