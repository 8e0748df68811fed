// Container logs in the CRI format conmon writes (k8s-file):
//   <RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n
// where P marks a partial line continued by the next entry of the same stream. The reader does
// what `kubectl logs` needs: tail N lines, since a time, timestamps on or off, a byte limit,
// and follow across rotation (the file renamed to <log>.1 and a new one started).
//
// Rotation: conmon's own --log-size-max truncates the log (it replaces the file with an empty
// one and loses what was in it), so skiff does not use it; ContainerRuntime::rotate_log renames
// the file to <log>.1 and asks conmon to reopen the path, which keeps one previous file, as
// the kubelet keeps rotated files. read_container_log reads <log>.1 before <log>.
//
// Functions are thread-safe; they read files only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"

namespace skiff::agent::runtime {

enum class LogStream { kStdout, kStderr };

struct LogEntry {
  TimePoint time;
  std::string_view timestamp;  // as written, e.g. "2024-01-02T03:04:05.123456789+00:00"
  LogStream stream = LogStream::kStdout;
  bool partial = false;
  std::string_view content;  // without the newline
};

// Parses one line (without its '\n'). BadRequest for a line not in the CRI format.
Result<LogEntry> parse_cri_log_line(std::string_view line);

// A log line in the CRI format, as conmon writes it (for tests and tools).
std::string format_cri_log_line(TimePoint time, LogStream stream, bool partial,
                                std::string_view content);

struct LogOptions {
  std::optional<int64_t> tail_lines;  // the last N lines only
  std::optional<TimePoint> since;     // lines logged at or after this time only
  bool timestamps = false;            // prefix each line with its RFC3339Nano timestamp
  int64_t limit_bytes = 0;            // stop after this many bytes of output; 0: no limit
  bool follow = false;                // keep reading as the container writes
  // Follow stops once this returns false (e.g. the container has exited and all its output
  // was read); it is asked whenever the reader reaches the end of the file and nothing new
  // arrives for `poll_interval`. Unset: follow until the sink returns false.
  std::function<bool()> keep_following;
  std::chrono::milliseconds poll_interval{250};
};

// Writes the log's lines to `sink` as `kubectl logs` shows them (content, a newline after full
// lines; partial lines joined). The sink returns false to stop. NotFound when neither the log
// nor its rotated file exists. Lines not in the CRI format are skipped.
Status read_container_log(const std::string& path, const LogOptions& options,
                          const std::function<bool(std::string_view)>& sink);

}  // namespace skiff::agent::runtime
