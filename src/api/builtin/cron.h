// CronJob schedule checks with the messages of github.com/robfig/cron/v3's ParseStandard, which
// Kubernetes uses: five fields (minute hour day-of-month month day-of-week), lists, ranges,
// steps, month and weekday names, and the descriptors @yearly/@annually, @monthly, @weekly,
// @daily/@midnight, @hourly and "@every <duration>".
//
// Private to src/api/builtin. Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace skiff::api::builtin {

// The error ParseStandard returns for `spec`, e.g. "expected exactly 5 fields, found 3: [* * *]"
// or "end of range (60) above maximum (59): 60"; nullopt when the schedule parses.
std::optional<std::string> cron_schedule_error(std::string_view spec);

// The error time.LoadLocation returns for `name` ("unknown time zone Mars/Olympus"), or nullopt
// when the zone is "UTC", "Local" or present in the system's zoneinfo database.
std::optional<std::string> time_zone_error(std::string_view name);

}  // namespace skiff::api::builtin
