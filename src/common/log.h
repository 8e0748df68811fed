// A small leveled logger writing klog-style lines to stderr:
//
//   I0102 03:04:05.123456   12345 server.cc:42] listening on :6443
//
// (level letter D/I/W/E, UTC month-day and time to the microsecond, thread id,
// source file and line). Two ways to log, both cheap when the level is disabled
// (arguments are not evaluated):
//
//   SKIFF_LOG(Info) << "listening on " << addr;
//   SKIFF_LOGF(Warn, "retrying %s in %d ms", key.c_str(), delay_ms);
//
// Thread-safe: each line is written whole, lines from different threads never
// interleave, and the level may be changed at any time.
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Messages below `level` are dropped. The default is kInfo.
void set_log_level(LogLevel level);
LogLevel log_level();
bool log_enabled(LogLevel level);

// "debug", "info", "warn" (or "warning"), "error", any case; BadRequest
// otherwise.
Result<LogLevel> parse_log_level(std::string_view name);
// "debug", "info", "warn", "error".
const char* log_level_name(LogLevel level);

// Receives each complete line, newline included. The default writes to stderr.
// Passing nullptr restores the default. The sink is called with an internal
// lock held, one line at a time; it must not log.
using LogSink = std::function<void(LogLevel level, std::string_view line)>;
void set_log_sink(LogSink sink);

// Logs one message (a trailing newline is added if missing). `file` may be a
// full path; only its last component is printed.
void log_message(LogLevel level, const char* file, int line, std::string_view message);
void log_printf(LogLevel level, const char* file, int line, const char* format, ...)
    __attribute__((format(printf, 4, 5)));

// Collects a streamed message and logs it when destroyed; use through
// SKIFF_LOG.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line)
      : level_(level), file_(file), line_(line) {}
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage() { log_message(level_, file_, line_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

namespace log_internal {
// Turns the stream expression into void so that SKIFF_LOG can be one ?:
// expression.
struct Voidify {
  void operator&(std::ostream&) {}
};
}  // namespace log_internal

}  // namespace skiff

// `level` is one of Debug, Info, Warn, Error.
#define SKIFF_LOG(level)                             \
  !::skiff::log_enabled(::skiff::LogLevel::k##level) \
      ? (void)0                                      \
      : ::skiff::log_internal::Voidify() &           \
            ::skiff::LogMessage(::skiff::LogLevel::k##level, __FILE__, __LINE__).stream()

#define SKIFF_LOGF(level, ...)                                                           \
  do {                                                                                   \
    if (::skiff::log_enabled(::skiff::LogLevel::k##level)) {                             \
      ::skiff::log_printf(::skiff::LogLevel::k##level, __FILE__, __LINE__, __VA_ARGS__); \
    }                                                                                    \
  } while (0)
