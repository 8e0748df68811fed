#include "api/builtin/cron.h"

#include "common/cron_schedule.h"
#include "common/time_zone.h"

namespace skiff::api::builtin {

std::optional<std::string> time_zone_error(std::string_view name) {
  if (name.empty() || name == "UTC" || name == "Local") return std::nullopt;
  auto zone = TimeZone::load(name);
  if (zone.ok()) return std::nullopt;
  return zone.status().message();
}

std::optional<std::string> cron_schedule_error(std::string_view spec) {
  auto schedule = CronSchedule::parse(spec);
  if (schedule.ok()) return std::nullopt;
  return schedule.status().message();
}

}  // namespace skiff::api::builtin
