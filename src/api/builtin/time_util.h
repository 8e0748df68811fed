// Seconds-based adapters over common/time.h for Table cells, which Kubernetes computes with
// whole-second ages relative to a `now` given in seconds since the epoch.
//
// Private to src/api/builtin. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace skiff::api::builtin {

// Seconds since the Unix epoch of an RFC 3339 time, rounded toward the past; nullopt when the
// text does not parse as metav1.Time does.
std::optional<int64_t> parse_rfc3339_seconds(std::string_view s);

// "2024-01-02T03:04:05Z" for seconds since the epoch, in UTC.
std::string format_rfc3339_utc(int64_t seconds);

// duration.HumanDuration of a whole number of seconds ("45s", "3m20s", "5h3m", "3d4h", ...).
std::string human_duration(int64_t seconds);

}  // namespace skiff::api::builtin
