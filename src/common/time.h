// Time as the Kubernetes API writes it, and durations as kubectl and
// metav1.Duration show them.
//
//  - metav1.Time: RFC 3339 in UTC with whole seconds, "2024-01-02T03:04:05Z"
//    (creationTimestamp, lastTransitionTime, ...);
//  - metav1.MicroTime: six fractional digits, "2024-01-02T03:04:05.123456Z"
//  (Event.eventTime,
//    Lease.spec.renewTime);
//  - kubectl's AGE column: human_duration
//  (k8s.io/apimachinery/pkg/util/duration);
//  - metav1.Duration: Go's time.Duration text, "1h0m0s", "90s", "1.5ms".
//
// Free functions are pure and thread-safe (now() reads the system clock). Code
// that needs the time for decisions should take a Clock so tests can inject a
// FakeClock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff {

using TimePoint = std::chrono::system_clock::time_point;

// The current wall-clock time.
TimePoint now();

// A time as seconds since the Unix epoch plus nanoseconds (0 <= nanos < 1e9),
// for times TimePoint cannot hold: metav1.Time accepts any year RFC 3339 can
// write (0000 to 9999), Go's zero time (year 1) among them, and protobuf
// carries metav1.Time in this form.
struct Timestamp {
  int64_t seconds = 0;
  int32_t nanos = 0;
  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

// Seconds since the epoch of 0001-01-01T00:00:00Z, Go's zero time.Time;
// metav1.Time writes it as JSON null.
inline constexpr int64_t kGoZeroTimeSeconds = -62135596800;

// "2024-01-02T03:04:05Z": UTC, truncated to the second (toward the past, also
// before 1970).
std::string format_rfc3339(TimePoint t);
// "2024-01-02T03:04:05.123456Z": UTC, truncated to the microsecond, always six
// digits.
std::string format_rfc3339_micro(TimePoint t);
// "2024-01-02T03:04:05Z" (fraction_digits 0, metav1.Time) or
// "2024-01-02T03:04:05.123456Z" (fraction_digits 6, metav1.MicroTime): UTC,
// with the nanoseconds truncated to fraction_digits digits (at most 9).
// nullopt for years outside [0, 9999], which RFC 3339 cannot express, and for
// nanos outside [0, 1e9).
std::optional<std::string> format_rfc3339(Timestamp t, int fraction_digits);

// Parses RFC 3339 as Go's time.Parse(time.RFC3339, s) does (what metav1.Time
// decoding uses): "Z" or a "+hh:mm"/"-hh:mm" offset, optional fractional
// seconds after '.' or ',' (up to nanoseconds; further digits are ignored).
// TimePoint holds 64-bit nanoseconds, so times before 1678 or after 2261 are
// rejected. Errors are BadRequest worded as Go's:
//   `parsing time "x" as "2006-01-02T15:04:05Z07:00": cannot parse "x" as
//   "2006"`, `parsing time "2024-13-01T00:00:00Z": month out of range`,
//   `parsing time "2024-01-01T00:00:00Zx": extra text: "x"`.
Result<TimePoint> parse_rfc3339(std::string_view text);
// As parse_rfc3339, without TimePoint's limits: every time RFC 3339 can write
// (years 0000 to 9999) is accepted.
Result<Timestamp> parse_rfc3339_timestamp(std::string_view text);

// duration.HumanDuration, kubectl's AGE: "0s" for tiny negative skew (> -2s),
// "<invalid>" below that; then "45s" (up to 119s), "5m30s" / "5m" (under 10m),
// "42m" (under 3h), "5h7m" / "5h" (under 8h), "30h" (under 2d), "3d4h" / "3d"
// (under 8d), "45d" (under 2y), "2y100d" / "2y" (under 8y), "12y".
std::string human_duration(std::chrono::nanoseconds d);
// human_duration of a whole number of seconds, as Table cells compute ages
// from metav1.Time values; unlike nanoseconds it cannot overflow, however old
// the time.
std::string human_duration_seconds(int64_t seconds);
// duration.ShortHumanDuration: one unit only, "45s", "5m", "3h", "4d", "2y".
std::string short_human_duration(std::chrono::nanoseconds d);

// time.Duration.String: "0s", "1.5s", "1m30s", "1h0m0s", "-2h45m0.5s", "1.5ms",
// "2µs", "100ns".
std::string format_go_duration(std::chrono::nanoseconds d);
// time.ParseDuration: "[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+" with units ns, us (or
// µs/μs), ms, s, m, h, e.g. "1h30m", "1.5h", "300ms", "-2m"; "0" alone is zero.
// Errors are BadRequest worded as Go's: `time: invalid duration "x"`, `time:
// missing unit in duration "1"`, `time: unknown unit "d" in duration "1d"`;
// values beyond about 292 years are invalid.
Result<std::chrono::nanoseconds> parse_go_duration(std::string_view text);

// A source of the current time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // The system clock; lives for the whole program.
  static const Clock& real();
};

// A Clock for tests: time stands still until set or advanced. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint()) : now_ns_(to_ns(start)) {}
  TimePoint now() const override {
    return TimePoint(
        std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(now_ns_.load())));
  }
  void set(TimePoint t) { now_ns_.store(to_ns(t)); }
  void advance(std::chrono::nanoseconds d) { now_ns_.fetch_add(d.count()); }

 private:
  static int64_t to_ns(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  std::atomic<int64_t> now_ns_;
};

}  // namespace skiff
