#include "common/time.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace skiff {
namespace {

using namespace std::chrono_literals;

TimePoint at(std::string_view rfc3339) {
  auto r = parse_rfc3339(rfc3339);
  EXPECT_TRUE(r.ok()) << rfc3339 << ": " << r.status().to_string();
  return r.ok() ? *r : TimePoint();
}

TEST(Rfc3339Test, FormatsSecondsAndMicroseconds) {
  const TimePoint t = TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::sys_days(std::chrono::year(2024) / 1 / 2).time_since_epoch() + 3h + 4min + 5s +
      123456789ns));
  EXPECT_EQ(format_rfc3339(t), "2024-01-02T03:04:05Z");
  EXPECT_EQ(format_rfc3339_micro(t), "2024-01-02T03:04:05.123456Z");
  EXPECT_EQ(format_rfc3339(TimePoint()), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339_micro(TimePoint()), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_rfc3339(TimePoint() - 1ns), "1969-12-31T23:59:59Z")
      << "truncates toward the past";
}

TEST(Rfc3339Test, ParsesZuluOffsetsAndFractions) {
  EXPECT_EQ(format_rfc3339(at("2024-01-02T03:04:05Z")), "2024-01-02T03:04:05Z");
  EXPECT_EQ(format_rfc3339(at("2024-01-02T05:04:05+02:00")), "2024-01-02T03:04:05Z");
  EXPECT_EQ(format_rfc3339(at("2024-01-01T23:00:00-05:30")), "2024-01-02T04:30:00Z");
  EXPECT_EQ(format_rfc3339_micro(at("2024-01-02T03:04:05.5Z")), "2024-01-02T03:04:05.500000Z");
  EXPECT_EQ(format_rfc3339_micro(at("2024-01-02T03:04:05,123456789123Z")),
            "2024-01-02T03:04:05.123456Z");
  EXPECT_EQ(format_rfc3339(at("2024-02-29T00:00:00Z")), "2024-02-29T00:00:00Z");
  EXPECT_EQ(format_rfc3339(at("2024-01-02T3:04:05Z")), "2024-01-02T03:04:05Z")
      << "Go accepts a one-digit hour";
  const TimePoint t = now();
  EXPECT_EQ(format_rfc3339_micro(at(format_rfc3339_micro(t))), format_rfc3339_micro(t));
}

TEST(Rfc3339Test, ErrorsReadLikeGo) {
  EXPECT_EQ(parse_rfc3339("x").status().message(),
            "parsing time \"x\" as \"2006-01-02T15:04:05Z07:00\": cannot parse "
            "\"x\" as \"2006\"");
  EXPECT_EQ(parse_rfc3339("2024-01-02 03:04:05Z").status().message(),
            "parsing time \"2024-01-02 03:04:05Z\" as "
            "\"2006-01-02T15:04:05Z07:00\": cannot parse "
            "\" 03:04:05Z\" as \"T\"");
  EXPECT_EQ(parse_rfc3339("2024-01-02T03:04:05").status().message(),
            "parsing time \"2024-01-02T03:04:05\" as "
            "\"2006-01-02T15:04:05Z07:00\": cannot parse "
            "\"\" as \"Z07:00\"");
  EXPECT_EQ(parse_rfc3339("2024-13-01T00:00:00Z").status().message(),
            "parsing time \"2024-13-01T00:00:00Z\": month out of range");
  EXPECT_EQ(parse_rfc3339("2023-02-29T00:00:00Z").status().message(),
            "parsing time \"2023-02-29T00:00:00Z\": day out of range");
  EXPECT_EQ(parse_rfc3339("2024-01-01T24:00:00Z").status().message(),
            "parsing time \"2024-01-01T24:00:00Z\": hour out of range");
  EXPECT_EQ(parse_rfc3339("2024-01-01T00:00:00Zjunk").status().message(),
            "parsing time \"2024-01-01T00:00:00Zjunk\": extra text: \"junk\"");
  EXPECT_EQ(parse_rfc3339("").status().code(), StatusCode::kBadRequest);
  EXPECT_EQ(parse_rfc3339("9999-12-31T23:59:59Z").status().message(),
            "parsing time \"9999-12-31T23:59:59Z\": time outside the supported "
            "range (years "
            "1678 to 2261)");
  EXPECT_FALSE(parse_rfc3339("0000-01-01T00:00:00Z").ok());
  EXPECT_FALSE(parse_rfc3339("2024-01-01t00:00:00Z").ok());
  EXPECT_FALSE(parse_rfc3339("2024-01-01T00:00:00z").ok());
}

TEST(HumanDurationTest, MatchesKubectlAge) {
  EXPECT_EQ(human_duration(-2s), "<invalid>");
  EXPECT_EQ(human_duration(-1500ms), "0s");
  EXPECT_EQ(human_duration(0s), "0s");
  EXPECT_EQ(human_duration(45s), "45s");
  EXPECT_EQ(human_duration(119s), "119s");
  EXPECT_EQ(human_duration(2min), "2m");
  EXPECT_EQ(human_duration(5min + 30s), "5m30s");
  EXPECT_EQ(human_duration(9min + 59s), "9m59s");
  EXPECT_EQ(human_duration(10min + 30s), "10m");
  EXPECT_EQ(human_duration(179min), "179m");
  EXPECT_EQ(human_duration(3h), "3h");
  EXPECT_EQ(human_duration(5h + 7min), "5h7m");
  EXPECT_EQ(human_duration(8h + 59min), "8h");
  EXPECT_EQ(human_duration(47h), "47h");
  EXPECT_EQ(human_duration(48h), "2d");
  EXPECT_EQ(human_duration(3 * 24h + 4h), "3d4h");
  EXPECT_EQ(human_duration(8 * 24h + 5h), "8d");
  EXPECT_EQ(human_duration(729 * 24h), "729d");
  EXPECT_EQ(human_duration(730 * 24h), "2y");
  EXPECT_EQ(human_duration(830 * 24h), "2y100d");
  EXPECT_EQ(human_duration(8 * 365 * 24h), "8y");
}

TEST(HumanDurationTest, Short) {
  EXPECT_EQ(short_human_duration(59s), "59s");
  EXPECT_EQ(short_human_duration(61s), "1m");
  EXPECT_EQ(short_human_duration(25h), "1d");
  EXPECT_EQ(short_human_duration(400 * 24h), "1y");
  EXPECT_EQ(short_human_duration(-5s), "<invalid>");
}

TEST(GoDurationTest, Formats) {
  EXPECT_EQ(format_go_duration(0s), "0s");
  EXPECT_EQ(format_go_duration(1h), "1h0m0s");
  EXPECT_EQ(format_go_duration(90s), "1m30s");
  EXPECT_EQ(format_go_duration(1500ms), "1.5s");
  EXPECT_EQ(format_go_duration(1500us), "1.5ms");
  EXPECT_EQ(format_go_duration(2us), "2\xC2\xB5s");
  EXPECT_EQ(format_go_duration(100ns), "100ns");
  EXPECT_EQ(format_go_duration(-(2h + 45min + 500ms)), "-2h45m0.5s");
  EXPECT_EQ(format_go_duration(std::chrono::nanoseconds::min()), "-2562047h47m16.854775808s");
}

TEST(GoDurationTest, Parses) {
  EXPECT_EQ(*parse_go_duration("1h0m0s"), 1h);
  EXPECT_EQ(*parse_go_duration("1h30m"), 90min);
  EXPECT_EQ(*parse_go_duration("1.5h"), 90min);
  EXPECT_EQ(*parse_go_duration("300ms"), 300ms);
  EXPECT_EQ(*parse_go_duration("-2m"), -2min);
  EXPECT_EQ(*parse_go_duration("+5s"), 5s);
  EXPECT_EQ(*parse_go_duration("0"), 0s);
  EXPECT_EQ(*parse_go_duration("1us"), 1us);
  EXPECT_EQ(*parse_go_duration("1\xC2\xB5s"), 1us);
  EXPECT_EQ(*parse_go_duration(".5s"), 500ms);
  EXPECT_EQ(*parse_go_duration("2562047h47m16.854775807s"), std::chrono::nanoseconds::max());
  for (const std::chrono::nanoseconds d :
       {std::chrono::nanoseconds(1h), std::chrono::nanoseconds(90s),
        std::chrono::nanoseconds(1500ms), 3ns}) {
    EXPECT_EQ(*parse_go_duration(format_go_duration(d)), d);
  }
}

TEST(GoDurationTest, ErrorsReadLikeGo) {
  EXPECT_EQ(parse_go_duration("").status().message(), "time: invalid duration \"\"");
  EXPECT_EQ(parse_go_duration("1").status().message(), "time: missing unit in duration \"1\"");
  EXPECT_EQ(parse_go_duration("1d").status().message(),
            "time: unknown unit \"d\" in duration \"1d\"");
  EXPECT_EQ(parse_go_duration("x").status().message(), "time: invalid duration \"x\"");
  EXPECT_EQ(parse_go_duration(".s").status().message(), "time: invalid duration \".s\"");
  EXPECT_EQ(parse_go_duration("3000000h").status().message(),
            "time: invalid duration \"3000000h\"");
  EXPECT_EQ(parse_go_duration("99999999999999999999ns").status().code(), StatusCode::kBadRequest);
}

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock(at("2024-01-01T00:00:00Z"));
  EXPECT_EQ(format_rfc3339(clock.now()), "2024-01-01T00:00:00Z");
  clock.advance(90s);
  EXPECT_EQ(format_rfc3339(clock.now()), "2024-01-01T00:01:30Z");
  clock.set(at("2030-06-01T12:00:00Z"));
  EXPECT_EQ(format_rfc3339(clock.now()), "2030-06-01T12:00:00Z");
  const Clock& real = Clock::real();
  EXPECT_GT(real.now(), at("2024-01-01T00:00:00Z"));
}

TEST(Rfc3339Test, TimestampsCoverEveryRfc3339Year) {
  auto t = parse_rfc3339_timestamp("2024-02-29T23:59:59Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->seconds, 1709251199);
  EXPECT_EQ(*format_rfc3339(*t, 0), "2024-02-29T23:59:59Z");

  auto off = parse_rfc3339_timestamp("2024-03-01T01:59:59.5+02:00");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->seconds, 1709251199);
  EXPECT_EQ(off->nanos, 500000000);
  EXPECT_EQ(*format_rfc3339(*off, 6), "2024-02-29T23:59:59.500000Z");

  EXPECT_EQ(*format_rfc3339(Timestamp{0, 0}, 0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(*format_rfc3339(Timestamp{-1, 0}, 0), "1969-12-31T23:59:59Z");
  EXPECT_EQ(*format_rfc3339(Timestamp{kGoZeroTimeSeconds, 0}, 0), "0001-01-01T00:00:00Z");
  EXPECT_EQ(parse_rfc3339_timestamp("0001-01-01T00:00:00Z")->seconds, kGoZeroTimeSeconds);
  EXPECT_EQ(*format_rfc3339(*parse_rfc3339_timestamp("9999-12-31T23:59:59.123456789Z"), 9),
            "9999-12-31T23:59:59.123456789Z");
  EXPECT_FALSE(format_rfc3339(Timestamp{INT64_MAX, 0}, 0));
  EXPECT_FALSE(format_rfc3339(Timestamp{INT64_MIN, 0}, 0));
  EXPECT_FALSE(format_rfc3339(Timestamp{0, -1}, 0));

  for (const char* bad :
       {"", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01", "2024-01-01 00:00:00Z",
        "2024-01-01T24:00:00Z", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00",
        "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00+0200", "2024-01-01T00:00:00Zjunk",
        "2024-13-01T00:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339_timestamp(bad).ok()) << bad;
  }
}

TEST(HumanDurationTest, SecondsNeverOverflow) {
  EXPECT_EQ(human_duration_seconds(-2), "<invalid>");
  EXPECT_EQ(human_duration_seconds(330), "5m30s");
  EXPECT_EQ(human_duration_seconds(int64_t{1000} * 365 * 24 * 3600), "1000y");
}

TEST(GoDurationTest, ValidityAndNanosecondFormatting) {
  for (const char* d :
       {"0", "1h0m0s", "1.5s", "300ms", "-2m", "1h30m", "1us", "1\xC2\xB5s", ".5h"}) {
    EXPECT_TRUE(parse_go_duration(d).ok()) << d;
  }
  for (const char* d : {"", "1", "h", "1x", "1.s.", "1 h", "-", "9999999999999999999h"}) {
    EXPECT_FALSE(parse_go_duration(d).ok()) << d;
  }
  EXPECT_EQ(format_go_duration(3600'000'000'000ns), "1h0m0s");
  EXPECT_EQ(format_go_duration(1'500ns), "1.5\xC2\xB5s");
  EXPECT_EQ(format_go_duration(7ns), "7ns");
  EXPECT_EQ(format_go_duration(-90'000'000'000ns), "-1m30s");
}

}  // namespace
}  // namespace skiff
