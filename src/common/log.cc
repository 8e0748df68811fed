#include "common/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace skiff {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

std::mutex& sink_mutex() {
  static auto* mu = new std::mutex();  // never destroyed: logging may happen during shutdown
  return *mu;
}

// GUARDED_BY(sink_mutex()).
LogSink& sink() {
  static auto* s = new LogSink();
  return *s;
}

void write_stderr(std::string_view line) {
  while (!line.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a failing stderr
    }
    line.remove_prefix(static_cast<size_t>(n));
  }
}

char level_letter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarn:
      return 'W';
    case LogLevel::kError:
      return 'E';
  }
  return '?';
}

std::string header(LogLevel level, const char* file, int line) {
  const auto now = std::chrono::system_clock::now();
  const auto since = now.time_since_epoch();
  const auto secs = std::chrono::floor<std::chrono::seconds>(since);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since - secs).count();
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&t, &tm);
  static thread_local const long tid = static_cast<long>(::gettid());
  const char* base = file == nullptr ? "?" : std::strrchr(file, '/');
  base = base == nullptr ? file : base + 1;
  char buf[256];
  const int n = std::snprintf(buf, sizeof(buf), "%c%02d%02d %02d:%02d:%02d.%06lld %7ld %s:%d] ",
                              level_letter(level), tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<long long>(micros), tid, base, line);
  return std::string(buf, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
}

}  // namespace

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

Result<LogLevel> parse_log_level(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warn" || lower == "warning") return LogLevel::kWarn;
  if (lower == "error") return LogLevel::kError;
  return Status::BadRequest("unknown log level \"" + std::string(name) +
                            "\": expected debug, info, warn or error");
}

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

void set_log_sink(LogSink s) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  sink() = std::move(s);
}

void log_message(LogLevel level, const char* file, int line, std::string_view message) {
  if (!log_enabled(level)) return;
  std::string text = header(level, file, line);
  text.append(message);
  if (text.empty() || text.back() != '\n') text += '\n';
  std::lock_guard<std::mutex> lock(sink_mutex());
  if (sink()) {
    sink()(level, text);
  } else {
    write_stderr(text);
  }
}

void log_printf(LogLevel level, const char* file, int line, const char* format, ...) {
  if (!log_enabled(level)) return;
  char small[512];
  va_list args;
  va_start(args, format);
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(small, sizeof(small), format, args);
  va_end(args);
  std::string message;
  if (n < 0) {
    message = format;  // unformattable: log the format string rather than nothing
  } else if (static_cast<size_t>(n) < sizeof(small)) {
    message.assign(small, static_cast<size_t>(n));
  } else {
    message.resize(static_cast<size_t>(n));
    std::vsnprintf(message.data(), message.size() + 1, format, copy);
  }
  va_end(copy);
  log_message(level, file, line, message);
}

}  // namespace skiff
