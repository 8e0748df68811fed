// Periodic node housekeeping of the agent. For now: container log rotation as the kubelet's
// container log manager does it (containerLogMaxSize, containerLogMaxFiles): every interval,
// each running container's log larger than the maximum size is rotated, and at most
// max_files files are kept per container (the current one and max_files - 1 rotated ones,
// <log>.1 the newest).
//
// Thread-safety: start() and stop() are thread-safe; rotate_logs() may be called from any
// thread but not concurrently with itself (the background thread calls it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "common/status.h"

namespace skiff::agent {

namespace runtime {
class ContainerRuntime;
}

struct HousekeepingOptions {
  int64_t container_log_max_size = 10 * 1024 * 1024;  // the kubelet's 10Mi
  int container_log_max_files = 5;                    // at least 2
  std::chrono::milliseconds interval{std::chrono::seconds(10)};
};

class Housekeeping {
 public:
  // `runtime` must outlive the Housekeeping.
  Housekeeping(runtime::ContainerRuntime& runtime, HousekeepingOptions options);
  ~Housekeeping();  // stop()
  Housekeeping(const Housekeeping&) = delete;
  Housekeeping& operator=(const Housekeeping&) = delete;

  // Starts the background thread (a pass every interval). Idempotent.
  void start();
  // Stops it and waits for a pass in progress. Idempotent.
  void stop();

  // One pass over the running containers: rotates each log larger than the maximum size,
  // shifting <log>.1 .. <log>.(max_files-2) up by one and dropping the oldest. Returns how
  // many logs it rotated; the runtime's error when the containers cannot be listed (a
  // container whose log cannot be rotated is logged and skipped).
  Result<int> rotate_logs();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::agent
