// CronJob schedules, with robfig/cron/v3 ParseStandard's messages.
#include "api/builtin/cron.h"

#include <gtest/gtest.h>

namespace skiff::api::builtin {
namespace {

TEST(CronSchedule, AcceptsStandardSchedulesAndDescriptors) {
  for (const char* spec :
       {"* * * * *", "*/5 * * * *", "0 0 1 1 *", "0 9-17 * * mon-fri",
        "15,45 */2 1-15/3 JAN-jun SUN", "0 0 ? * ?", "@hourly", "@daily", "@midnight", "@weekly",
        "@monthly", "@yearly", "@annually", "@every 1h30m", "  0   0 * * *  "}) {
    EXPECT_EQ(cron_schedule_error(spec), std::nullopt) << spec;
  }
}

TEST(CronSchedule, RejectsWithUpstreamMessages) {
  EXPECT_EQ(cron_schedule_error(""), "empty spec string");
  EXPECT_EQ(cron_schedule_error("* * *"), "expected exactly 5 fields, found 3: [* * *]");
  EXPECT_EQ(cron_schedule_error("0 0 * * * *"),
            "expected exactly 5 fields, found 6: [0 0 * * * *]");
  EXPECT_EQ(cron_schedule_error("60 * * * *"), "end of range (60) above maximum (59): 60");
  EXPECT_EQ(cron_schedule_error("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
  EXPECT_EQ(cron_schedule_error("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1");
  EXPECT_EQ(cron_schedule_error("*/0 * * * *"), "step of range should be a positive number: */0");
  EXPECT_EQ(cron_schedule_error("1-2-3 * * * *"), "too many hyphens: 1-2-3");
  EXPECT_EQ(cron_schedule_error("*/2/3 * * * *"), "too many slashes: */2/3");
  EXPECT_EQ(cron_schedule_error("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax");
  EXPECT_EQ(cron_schedule_error("* * * * 7"), "end of range (7) above maximum (6): 7");
  EXPECT_EQ(cron_schedule_error("@fortnightly"), "unrecognized descriptor: @fortnightly");
  EXPECT_EQ(cron_schedule_error("@every 1d"),
            "failed to parse duration @every 1d: time: unknown unit \"d\" in duration \"1d\"");
}

TEST(CronSchedule, TimeZones) {
  EXPECT_EQ(time_zone_error("UTC"), std::nullopt);
  EXPECT_EQ(time_zone_error("Mars/Olympus"), "unknown time zone Mars/Olympus");
  EXPECT_EQ(cron_schedule_error("TZ=Mars/Olympus 0 * * * *"),
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus");
}

}  // namespace
}  // namespace skiff::api::builtin
