// Cron schedules and time zones, as robfig/cron (which Kubernetes uses) reads and steps them.
#include "common/cron_schedule.h"

#include <gtest/gtest.h>

#include "common/time_zone.h"

namespace skiff {
namespace {

TimePoint at(const std::string& rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return t.ok() ? *t : TimePoint();
}

// The next activation after `from`, as RFC 3339 UTC ("none" when there is none).
std::string next(const std::string& spec, const std::string& from) {
  auto s = CronSchedule::parse(spec);
  if (!s.ok()) return "error: " + s.status().message();
  auto n = s->next(at(from));
  return n ? format_rfc3339(*n) : "none";
}

std::string error_of(const std::string& spec) {
  auto s = CronSchedule::parse(spec);
  return s.ok() ? "" : s.status().message();
}

TEST(CronSchedule, StepsRangesAndLists) {
  EXPECT_EQ(next("*/15 * * * *", "2024-01-01T00:07:30Z"), "2024-01-01T00:15:00Z");
  EXPECT_EQ(next("*/15 * * * *", "2024-01-01T00:15:00Z"), "2024-01-01T00:30:00Z");
  EXPECT_EQ(next("10-40/10 * * * *", "2024-01-01T00:41:00Z"), "2024-01-01T01:10:00Z");
  EXPECT_EQ(next("5/20 * * * *", "2024-01-01T00:26:00Z"), "2024-01-01T00:45:00Z");
  EXPECT_EQ(next("0 6,18 * * *", "2024-01-01T07:00:00Z"), "2024-01-01T18:00:00Z");
  EXPECT_EQ(next("0 6,18 * * *", "2024-01-01T18:00:00Z"), "2024-01-02T06:00:00Z");
  EXPECT_EQ(next("* * * * *", "2024-12-31T23:59:59Z"), "2025-01-01T00:00:00Z");
}

TEST(CronSchedule, MonthAndWeekdayNamesInAnyCase) {
  // 2024-01-06 is a Saturday.
  EXPECT_EQ(next("0 9 * * MON-FRI", "2024-01-06T10:00:00Z"), "2024-01-08T09:00:00Z");
  EXPECT_EQ(next("0 9 * * mon-Fri", "2024-01-08T09:00:00Z"), "2024-01-09T09:00:00Z");
  EXPECT_EQ(next("0 0 1 jan,Jul *", "2024-02-01T00:00:00Z"), "2024-07-01T00:00:00Z");
  EXPECT_EQ(next("0 0 1 JAN-MAR/2 *", "2024-01-01T00:00:00Z"), "2024-03-01T00:00:00Z");
}

TEST(CronSchedule, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // Friday the 5th comes before the 13th; both match.
  EXPECT_EQ(next("0 0 13 * FRI", "2024-01-01T00:00:00Z"), "2024-01-05T00:00:00Z");
  EXPECT_EQ(next("0 0 13 * FRI", "2024-01-12T00:00:00Z"), "2024-01-13T00:00:00Z");
  // A "*" in either field means both must match.
  EXPECT_EQ(next("0 0 13 * *", "2024-01-01T00:00:00Z"), "2024-01-13T00:00:00Z");
  EXPECT_EQ(next("0 0 * * FRI", "2024-01-01T00:00:00Z"), "2024-01-05T00:00:00Z");
  // "?" is a "*"; "*/2" restricts (days 1, 3, 5, ...), so the OR rule applies.
  EXPECT_EQ(next("0 0 ? * FRI", "2024-01-01T00:00:00Z"), "2024-01-05T00:00:00Z");
  EXPECT_EQ(next("0 0 */2 * FRI", "2024-01-01T00:00:00Z"), "2024-01-03T00:00:00Z");
}

TEST(CronSchedule, RareAndImpossibleDates) {
  EXPECT_EQ(next("0 0 29 2 *", "2024-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
  EXPECT_EQ(next("0 0 31 * *", "2024-04-01T00:00:00Z"), "2024-05-31T00:00:00Z");
  EXPECT_EQ(next("0 0 30 2 *", "2024-01-01T00:00:00Z"), "none");
}

TEST(CronSchedule, Descriptors) {
  EXPECT_EQ(next("@hourly", "2024-01-01T00:30:00Z"), "2024-01-01T01:00:00Z");
  EXPECT_EQ(next("@daily", "2024-01-01T00:30:00Z"), "2024-01-02T00:00:00Z");
  EXPECT_EQ(next("@midnight", "2024-01-01T00:30:00Z"), "2024-01-02T00:00:00Z");
  EXPECT_EQ(next("@weekly", "2024-01-01T00:00:00Z"), "2024-01-07T00:00:00Z");
  EXPECT_EQ(next("@monthly", "2024-01-15T00:00:00Z"), "2024-02-01T00:00:00Z");
  EXPECT_EQ(next("@yearly", "2024-01-15T00:00:00Z"), "2025-01-01T00:00:00Z");
  EXPECT_EQ(next("@annually", "2024-01-15T00:00:00Z"), "2025-01-01T00:00:00Z");
  EXPECT_EQ(next("@every 1h30m", "2024-01-01T00:10:00Z"), "2024-01-01T01:40:00Z");
}

TEST(CronSchedule, ErrorsReadAsKubernetesReportsThem) {
  EXPECT_EQ(error_of("* * *"), "expected exactly 5 fields, found 3: [* * *]");
  EXPECT_EQ(error_of("0 0 * * * *"), "expected exactly 5 fields, found 6: [0 0 * * * *]");
  EXPECT_EQ(error_of("60 * * * *"), "end of range (60) above maximum (59): 60");
  EXPECT_EQ(error_of("* 24 * * *"), "end of range (24) above maximum (23): 24");
  EXPECT_EQ(error_of("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
  EXPECT_EQ(error_of("* * * * 7"), "end of range (7) above maximum (6): 7");
  EXPECT_EQ(error_of("5-1 * * * *"), "beginning of range (5) beyond end of range (1): 5-1");
  EXPECT_EQ(error_of("*/0 * * * *"), "step of range should be a positive number: */0");
  EXPECT_EQ(error_of("1-2-3 * * * *"), "too many hyphens: 1-2-3");
  EXPECT_EQ(error_of("*/2/3 * * * *"), "too many slashes: */2/3");
  EXPECT_EQ(error_of("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax");
  EXPECT_EQ(error_of("* * * FOO *"),
            "failed to parse int from FOO: strconv.Atoi: parsing \"FOO\": invalid syntax");
  EXPECT_EQ(error_of("@often"), "unrecognized descriptor: @often");
  EXPECT_EQ(error_of(""), "empty spec string");
  EXPECT_EQ(error_of("TZ=Mars/Olympus * * * * *"),
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus");
}

TEST(CronSchedule, TimeZonePrefixUsesTheZonesWallClock) {
  // Berlin is UTC+1 in winter and UTC+2 in summer.
  EXPECT_EQ(next("TZ=Europe/Berlin 0 9 * * *", "2024-01-01T00:00:00Z"), "2024-01-01T08:00:00Z");
  EXPECT_EQ(next("CRON_TZ=Europe/Berlin 0 9 * * *", "2024-07-01T00:00:00Z"),
            "2024-07-01T07:00:00Z");
  // 02:30 does not exist on 2024-03-31 in Berlin: that day is skipped, as robfig/cron does.
  EXPECT_EQ(next("TZ=Europe/Berlin 30 2 * * *", "2024-03-30T12:00:00Z"), "2024-04-01T00:30:00Z");
  EXPECT_EQ(next("TZ=America/New_York 0 12 * * *", "2024-01-10T00:00:00Z"), "2024-01-10T17:00:00Z");
  // Past the zone file's transitions, its POSIX rule applies.
  EXPECT_EQ(next("TZ=America/New_York 0 12 * * *", "2040-07-01T00:00:00Z"), "2040-07-01T16:00:00Z");
  EXPECT_EQ(next("TZ=UTC 0 12 * * *", "2024-01-10T00:00:00Z"), "2024-01-10T12:00:00Z");
}

TEST(TimeZone, LoadsZonesAndRejectsUnknownOnes) {
  auto berlin = TimeZone::load("Europe/Berlin");
  ASSERT_TRUE(berlin.ok()) << berlin.status().to_string();
  EXPECT_EQ((*berlin)->offset_at(1704067200), 3600);  // 2024-01-01
  EXPECT_EQ((*berlin)->offset_at(1719792000), 7200);  // 2024-07-01
  EXPECT_EQ(format_rfc3339_in_zone(at("2024-07-01T07:00:00Z"), **berlin),
            "2024-07-01T09:00:00+02:00");
  EXPECT_EQ(format_rfc3339_in_zone(at("2024-07-01T07:00:00Z"), *TimeZone::utc()),
            "2024-07-01T07:00:00Z");
  EXPECT_EQ(TimeZone::load("Mars/Olympus").status().message(), "unknown time zone Mars/Olympus");
  EXPECT_EQ(TimeZone::load("../etc/passwd").status().message(), "time: invalid location name");
  EXPECT_EQ(TimeZone::load("UTC").value()->offset_at(0), 0);
}

TEST(PosixTzRule, NorthernSouthernAndFixedZones) {
  auto cet = PosixTzRule::parse("CET-1CEST,M3.5.0,M10.5.0/3");
  ASSERT_TRUE(cet.has_value());
  EXPECT_EQ(cet->offset_at(2209161600), 3600);  // 2040-01-03
  EXPECT_EQ(cet->offset_at(2224713600), 7200);  // 2040-07-01
  auto sydney = PosixTzRule::parse("AEST-10AEDT,M10.1.0,M4.1.0/3");
  ASSERT_TRUE(sydney.has_value());
  EXPECT_EQ(sydney->offset_at(1704067200), 39600);  // 2024-01-01: summer down under
  EXPECT_EQ(sydney->offset_at(1719792000), 36000);  // 2024-07-01
  auto india = PosixTzRule::parse("<+0530>-5:30");
  ASSERT_TRUE(india.has_value());
  EXPECT_EQ(india->offset_at(0), 19800);
  EXPECT_FALSE(PosixTzRule::parse("1").has_value());
}

TEST(CivilTime, RoundTripsDates) {
  CivilTime c = civil_from_seconds(951782400);  // 2000-02-29
  EXPECT_EQ(c.year, 2000);
  EXPECT_EQ(c.month, 2);
  EXPECT_EQ(c.day, 29);
  EXPECT_EQ(c.weekday, 2);
  EXPECT_EQ(days_from_civil(2000, 2, 29) * 86400, 951782400);
  EXPECT_EQ(days_from_civil(2000, 14, 1), days_from_civil(2001, 2, 1));
  EXPECT_EQ(days_from_civil(2000, 1, 32), days_from_civil(2000, 2, 1));
}

}  // namespace
}  // namespace skiff
