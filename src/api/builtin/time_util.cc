#include "api/builtin/time_util.h"

#include <chrono>

#include "common/time.h"

namespace skiff::api::builtin {

std::optional<int64_t> parse_rfc3339_seconds(std::string_view s) {
  Result<TimePoint> t = parse_rfc3339(s);
  if (!t.ok()) return std::nullopt;
  return std::chrono::floor<std::chrono::seconds>(t->time_since_epoch()).count();
}

std::string format_rfc3339_utc(int64_t seconds) {
  return format_rfc3339(TimePoint(std::chrono::seconds(seconds)));
}

std::string human_duration(int64_t seconds) {
  return skiff::human_duration(std::chrono::seconds(seconds));
}

}  // namespace skiff::api::builtin
