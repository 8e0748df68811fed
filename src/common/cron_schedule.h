// CronJob schedules as github.com/robfig/cron/v3's ParseStandard reads them, which Kubernetes
// uses: five fields (minute hour day-of-month month day-of-week) with lists (1,5), ranges
// (1-5), steps (*/15, 10-40/10, 5/20), "*" and "?", month and weekday names (JAN, mon; any
// case), the descriptors @yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly and
// "@every <duration>", and an optional "TZ=<zone> " or "CRON_TZ=<zone> " prefix.
//
// As in cron, when both day-of-month and day-of-week are restricted (neither starts with
// "*" or "?"), a day matches if either does; otherwise both must.
//
// Thread-safety: a CronSchedule is immutable; all functions are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"
#include "common/time_zone.h"

namespace skiff {

class CronSchedule {
 public:
  // Parses `spec` (see the header comment). Errors are BadRequest worded as robfig/cron's:
  // "expected exactly 5 fields, found 3: [* * *]", "end of range (60) above maximum (59): 60",
  // "provided bad location Mars/Olympus: unknown time zone Mars/Olympus",
  // "unrecognized descriptor: @often". A zone in the spec is loaded from zoneinfo_dir;
  // without one, times are UTC.
  static Result<CronSchedule> parse(std::string_view spec,
                                    const std::string& zoneinfo_dir = "/usr/share/zoneinfo");

  // The first activation strictly after `t` (at whole seconds), computed on the wall clock of
  // the schedule's zone as robfig/cron's SpecSchedule.Next does (a day missing its midnight
  // to daylight time is handled; a skipped hour is jumped over). nullopt when nothing matches
  // within five years (e.g. "0 0 30 2 *").
  std::optional<TimePoint> next(TimePoint t) const;

  const TimeZone& zone() const { return *zone_; }

  // The bit sets of each field (bit n: value n matches); kStarBit marks a field written as
  // "*" or "?" (or a "*" range with step 1).
  static constexpr uint64_t kStarBit = uint64_t{1} << 63;
  uint64_t minute() const { return minute_; }
  uint64_t hour() const { return hour_; }
  uint64_t day_of_month() const { return dom_; }
  uint64_t month() const { return month_; }
  uint64_t day_of_week() const { return dow_; }

 private:
  std::optional<TimePoint> next_in_zone(int64_t unix_seconds) const;
  bool day_matches(int dom, int dow) const;

  uint64_t minute_ = 0;
  uint64_t hour_ = 0;
  uint64_t dom_ = 0;
  uint64_t month_ = 0;
  uint64_t dow_ = 0;
  std::optional<std::chrono::seconds> every_;  // "@every": a constant delay
  std::shared_ptr<const TimeZone> zone_ = TimeZone::utc();
};

// time.Time.Format(time.RFC3339) of `t` in `zone`: "2024-01-02T03:04:05+01:00", or with "Z"
// when the offset is zero.
std::string format_rfc3339_in_zone(TimePoint t, const TimeZone& zone);

}  // namespace skiff
