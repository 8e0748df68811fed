#include "common/cron_schedule.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <map>
#include <vector>

namespace skiff {
namespace {

// The month and weekday names a field may use: three lower-case letters each.
constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDowNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct Bounds {
  int min;
  int max;
  const char* const* names;  // names[i] stands for min + i; nullptr: numbers only
};

constexpr Bounds kMinutes{0, 59, nullptr};
constexpr Bounds kHours{0, 23, nullptr};
constexpr Bounds kDom{1, 31, nullptr};
constexpr Bounds kMonths{1, 12, kMonthNames};
constexpr Bounds kDow{0, 6, kDowNames};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t next = s.find(sep, pos);
    out.push_back(
        s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) return out;
    pos = next + 1;
  }
}

// mustParseInt, with strconv.Atoi's error text.
Result<int> must_parse_int(std::string_view expr) {
  std::string quoted = "\"" + std::string(expr) + "\"";
  std::string_view digits = expr;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ptr != digits.data() + digits.size() ||
      (ec != std::errc() && ec != std::errc::result_out_of_range) || digits[0] == '+' ||
      digits[0] == '-') {
    return Status::BadRequest("failed to parse int from " + std::string(expr) +
                              ": strconv.Atoi: parsing " + quoted + ": invalid syntax");
  }
  if (ec == std::errc::result_out_of_range || v > INT32_MAX) {
    return Status::BadRequest("failed to parse int from " + std::string(expr) +
                              ": strconv.Atoi: parsing " + quoted + ": value out of range");
  }
  if (negative && v != 0) {
    return Status::BadRequest("negative number (-" + std::to_string(v) +
                              ") not allowed: " + std::string(expr));
  }
  return static_cast<int>(v);
}

Result<int> parse_int_or_name(std::string_view expr, const Bounds& r) {
  if (r.names != nullptr) {
    std::string lower(expr);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (int i = 0; i <= r.max - r.min; ++i) {
      if (lower == r.names[i]) return r.min + i;
    }
  }
  return must_parse_int(expr);
}

uint64_t bits(int start, int end, int step) {
  uint64_t out = 0;
  for (int i = start; i <= end; i += step) out |= uint64_t{1} << i;
  return out;
}

uint64_t all_bits(const Bounds& r) { return bits(r.min, r.max, 1) | CronSchedule::kStarBit; }

// getRange.
Result<uint64_t> parse_range(std::string_view expr, const Bounds& r) {
  std::vector<std::string_view> range_and_step = split(expr, '/');
  std::vector<std::string_view> low_and_high = split(range_and_step[0], '-');
  bool single = low_and_high.size() == 1;
  int start = 0;
  int end = 0;
  int step = 1;
  uint64_t extra = 0;
  if (low_and_high[0] == "*" || low_and_high[0] == "?") {
    start = r.min;
    end = r.max;
    extra = CronSchedule::kStarBit;
  } else {
    auto s = parse_int_or_name(low_and_high[0], r);
    if (!s.ok()) return s.status();
    start = end = *s;
    if (low_and_high.size() == 2) {
      auto e = parse_int_or_name(low_and_high[1], r);
      if (!e.ok()) return e.status();
      end = *e;
    } else if (low_and_high.size() > 2) {
      return Status::BadRequest("too many hyphens: " + std::string(expr));
    }
  }
  if (range_and_step.size() == 2) {
    auto s = must_parse_int(range_and_step[1]);
    if (!s.ok()) return s.status();
    step = *s;
    // "N/step" means "N-max/step".
    if (single) end = r.max;
    if (step > 1) extra = 0;
  } else if (range_and_step.size() > 2) {
    return Status::BadRequest("too many slashes: " + std::string(expr));
  }
  std::string e(expr);
  if (start < r.min) {
    return Status::BadRequest("beginning of range (" + std::to_string(start) + ") below minimum (" +
                              std::to_string(r.min) + "): " + e);
  }
  if (end > r.max) {
    return Status::BadRequest("end of range (" + std::to_string(end) + ") above maximum (" +
                              std::to_string(r.max) + "): " + e);
  }
  if (start > end) {
    return Status::BadRequest("beginning of range (" + std::to_string(start) +
                              ") beyond end of range (" + std::to_string(end) + "): " + e);
  }
  if (step == 0) return Status::BadRequest("step of range should be a positive number: " + e);
  return bits(start, end, step) | extra;
}

// getField: a comma-separated list of ranges (empty items are skipped).
Result<uint64_t> parse_field(std::string_view field, const Bounds& r) {
  uint64_t out = 0;
  for (std::string_view part : split(field, ',')) {
    if (part.empty()) continue;
    auto b = parse_range(part, r);
    if (!b.ok()) return b.status();
    out |= *b;
  }
  return out;
}

std::vector<std::string_view> fields_of(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

int64_t floor_mod(int64_t a, int64_t b) {
  int64_t m = a % b;
  return m < 0 ? m + b : m;
}

int64_t unix_seconds_of(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(std::string_view spec, const std::string& zoneinfo_dir) {
  if (spec.empty()) return Status::BadRequest("empty spec string");
  CronSchedule s;
  if (spec.rfind("TZ=", 0) == 0 || spec.rfind("CRON_TZ=", 0) == 0) {
    size_t space = spec.find(' ');
    size_t eq = spec.find('=');
    if (space == std::string_view::npos) {
      return Status::BadRequest("provided bad location " + std::string(spec.substr(eq + 1)) +
                                ": missing schedule after the time zone");
    }
    std::string_view name = spec.substr(eq + 1, space - eq - 1);
    auto zone = TimeZone::load(name, zoneinfo_dir);
    if (!zone.ok()) {
      return Status::BadRequest("provided bad location " + std::string(name) + ": " +
                                zone.status().message());
    }
    s.zone_ = *zone;
    spec = trim(spec.substr(space));
  }
  if (!spec.empty() && spec[0] == '@') {
    uint64_t one_minute = uint64_t{1} << 0;
    s.minute_ = one_minute;
    s.hour_ = uint64_t{1} << 0;
    s.dom_ = all_bits(kDom);
    s.month_ = all_bits(kMonths);
    s.dow_ = all_bits(kDow);
    if (spec == "@yearly" || spec == "@annually") {
      s.dom_ = uint64_t{1} << 1;
      s.month_ = uint64_t{1} << 1;
    } else if (spec == "@monthly") {
      s.dom_ = uint64_t{1} << 1;
    } else if (spec == "@weekly") {
      s.dow_ = uint64_t{1} << 0;
    } else if (spec == "@daily" || spec == "@midnight") {
    } else if (spec == "@hourly") {
      s.hour_ = all_bits(kHours);
    } else if (spec.rfind("@every ", 0) == 0) {
      auto d = parse_go_duration(spec.substr(7));
      if (!d.ok()) {
        return Status::BadRequest("failed to parse duration " + std::string(spec) + ": " +
                                  d.status().message());
      }
      // Every: at least a second, in whole seconds.
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(*d);
      s.every_ = std::max(secs, std::chrono::seconds(1));
    } else {
      return Status::BadRequest("unrecognized descriptor: " + std::string(spec));
    }
    return s;
  }
  std::vector<std::string_view> fields = fields_of(spec);
  if (fields.size() != 5) {
    std::string list = "[";
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) list += ' ';
      list += fields[i];
    }
    list += "]";
    return Status::BadRequest("expected exactly 5 fields, found " + std::to_string(fields.size()) +
                              ": " + list);
  }
  const Bounds* bounds[] = {&kMinutes, &kHours, &kDom, &kMonths, &kDow};
  uint64_t* targets[] = {&s.minute_, &s.hour_, &s.dom_, &s.month_, &s.dow_};
  for (size_t i = 0; i < 5; ++i) {
    auto b = parse_field(fields[i], *bounds[i]);
    if (!b.ok()) return b.status();
    *targets[i] = *b;
  }
  return s;
}

bool CronSchedule::day_matches(int dom, int dow) const {
  bool dom_match = (uint64_t{1} << dom & dom_) != 0;
  bool dow_match = (uint64_t{1} << dow & dow_) != 0;
  if ((dom_ & kStarBit) != 0 || (dow_ & kStarBit) != 0) return dom_match && dow_match;
  return dom_match || dow_match;
}

std::optional<TimePoint> CronSchedule::next(TimePoint t) const {
  if (every_) {
    return std::chrono::floor<std::chrono::seconds>(t) + *every_;
  }
  return next_in_zone(unix_seconds_of(t) + 1);
}

std::optional<TimePoint> CronSchedule::next_in_zone(int64_t t) const {
  const TimeZone& z = *zone_;
  auto local = [&z](int64_t u) { return civil_from_seconds(u + z.offset_at(u)); };
  // time.Date: a wall time to an instant, with Go's choice around zone transitions.
  auto date = [&z](int64_t year, int month, int day, int hour, int minute, int second) {
    int64_t wall = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    return wall - z.offset_at(wall - z.offset_at(wall));
  };
  bool added = false;
  int64_t year_limit = local(t).year + 5;
  while (true) {  // WRAP
    CivilTime c = local(t);
    if (c.year > year_limit) return std::nullopt;
    bool wrapped = false;
    while ((uint64_t{1} << c.month & month_) == 0) {
      if (!added) {
        added = true;
        t = date(c.year, c.month, 1, 0, 0, 0);
        c = local(t);
      }
      t = date(c.year, c.month + 1, c.day, c.hour, c.minute, c.second);
      c = local(t);
      if (c.month == 1) {
        wrapped = true;
        break;
      }
    }
    if (wrapped) continue;
    while (!day_matches(c.day, c.weekday)) {
      if (!added) {
        added = true;
        t = date(c.year, c.month, c.day, 0, 0, 0);
        c = local(t);
      }
      t = date(c.year, c.month, c.day + 1, c.hour, c.minute, c.second);
      c = local(t);
      // A midnight lost to daylight time lands at 1am (or 11pm): back to the day's start.
      if (c.hour != 0) {
        t += c.hour > 12 ? (24 - c.hour) * 3600 : -c.hour * 3600;
        c = local(t);
      }
      if (c.day == 1) {
        wrapped = true;
        break;
      }
    }
    if (wrapped) continue;
    while ((uint64_t{1} << c.hour & hour_) == 0) {
      if (!added) {
        added = true;
        t = date(c.year, c.month, c.day, c.hour, 0, 0);
      }
      t += 3600;
      c = local(t);
      if (c.hour == 0) {
        wrapped = true;
        break;
      }
    }
    if (wrapped) continue;
    while ((uint64_t{1} << c.minute & minute_) == 0) {
      if (!added) {
        added = true;
        t -= floor_mod(t, 60);
      }
      t += 60;
      c = local(t);
      if (c.minute == 0) {
        wrapped = true;
        break;
      }
    }
    if (wrapped) continue;
    // Schedules fire at second 0 only.
    while (c.second != 0) {
      added = true;
      t += 1;
      c = local(t);
      if (c.second == 0) {
        wrapped = true;
        break;
      }
    }
    if (wrapped) continue;
    return TimePoint(std::chrono::seconds(t));
  }
}

std::string format_rfc3339_in_zone(TimePoint t, const TimeZone& zone) {
  int64_t u = unix_seconds_of(t);
  int32_t off = zone.offset_at(u);
  CivilTime c = civil_from_seconds(u + off);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d", static_cast<long long>(c.year),
                c.month, c.day, c.hour, c.minute, c.second);
  std::string out = buf;
  if (off == 0) return out + "Z";
  int32_t a = off < 0 ? -off : off;
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600, a % 3600 / 60);
  return out + buf;
}

}  // namespace skiff
