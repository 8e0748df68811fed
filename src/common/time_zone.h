// IANA time zones read from the system's zoneinfo database (TZif files, as Go's
// time.LoadLocation reads them), for CronJob schedules with spec.timeZone or a TZ= prefix.
//
// A TimeZone answers which UTC offset is in effect at a given instant: from the file's
// transitions, and past the last one from its POSIX TZ footer ("CET-1CEST,M3.5.0,M10.5.0/3").
//
// Thread-safety: a loaded TimeZone is immutable; load() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace skiff {

// A date and time of day on the proleptic Gregorian calendar (month 1..12, weekday 0 for
// Sunday), and the arithmetic between it and seconds since 1970-01-01T00:00:00.
struct CivilTime {
  int64_t year = 1970;
  int month = 1;
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int weekday = 4;
};
CivilTime civil_from_seconds(int64_t seconds);
// Days since 1970-01-01 of year-month-day; day may lie outside the month (it carries over).
int64_t days_from_civil(int64_t year, int month, int day);

// A POSIX TZ rule: standard and daylight offsets (seconds east of UTC) and when daylight time
// starts and ends each year.
struct PosixTzRule {
  struct Date {
    enum class Kind { kJulianNoLeap, kZeroBasedDay, kMonthWeekDay } kind = Kind::kMonthWeekDay;
    int day = 0;  // Jn: 1..365; n: 0..365; M: weekday 0 (Sunday)..6
    int week = 0;
    int month = 0;
    int32_t time = 7200;  // seconds after local midnight
  };
  int32_t std_offset = 0;
  std::optional<int32_t> dst_offset;  // absent: no daylight time
  Date start;
  Date end;

  // Parses "STDoffset[DST[offset][,start[/time],end[/time]]]"; nullopt when malformed.
  static std::optional<PosixTzRule> parse(std::string_view text);
  int32_t offset_at(int64_t unix_seconds) const;
};

class TimeZone {
 public:
  // The zone `name`: "UTC" (and "") is UTC; otherwise <zoneinfo_dir>/<name> must be a TZif
  // file. Errors worded as Go's: BadRequest "time: invalid location name" for names with
  // ".." or a leading '/', NotFound "unknown time zone <name>".
  static Result<std::shared_ptr<const TimeZone>> load(
      std::string_view name, const std::string& zoneinfo_dir = "/usr/share/zoneinfo");
  static std::shared_ptr<const TimeZone> utc();
  // A zone from TZif bytes; BadRequest when malformed.
  static Result<std::shared_ptr<const TimeZone>> from_tzif(std::string name, std::string_view data);

  const std::string& name() const { return name_; }
  // The UTC offset (seconds east) in effect at `unix_seconds`.
  int32_t offset_at(int64_t unix_seconds) const;

 private:
  std::string name_;
  std::vector<int64_t> transitions_;      // ascending
  std::vector<uint8_t> transition_type_;  // per transition, an index into offsets_
  std::vector<int32_t> offsets_;          // per local time type
  std::vector<bool> is_dst_;              // per local time type
  std::optional<PosixTzRule> footer_;
};

}  // namespace skiff
