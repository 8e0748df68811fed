#include "common/time_zone.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <sstream>

namespace skiff {
namespace {

constexpr int64_t kSecondsPerDay = 86400;

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// A cursor over POSIX TZ text.
struct Reader {
  std::string_view s;
  size_t i = 0;
  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i;
    return true;
  }
  bool number(int* out, int max_digits = 3) {
    size_t start = i;
    int v = 0;
    while (!done() && std::isdigit(static_cast<unsigned char>(s[i])) &&
           i - start < static_cast<size_t>(max_digits)) {
      v = v * 10 + (s[i] - '0');
      ++i;
    }
    if (i == start) return false;
    *out = v;
    return true;
  }
  bool name() {
    if (eat('<')) {
      size_t end = s.find('>', i);
      if (end == std::string_view::npos) return false;
      i = end + 1;
      return true;
    }
    size_t start = i;
    while (!done() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    return i - start >= 3;
  }
  // [+-]hh[:mm[:ss]] as seconds.
  bool duration(int32_t* out) {
    int sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    int h = 0;
    int m = 0;
    int sec = 0;
    if (!number(&h)) return false;
    if (eat(':')) {
      if (!number(&m, 2)) return false;
      if (eat(':') && !number(&sec, 2)) return false;
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool date(PosixTzRule::Date* d) {
    using Kind = PosixTzRule::Date::Kind;
    if (eat('J')) {
      d->kind = Kind::kJulianNoLeap;
      if (!number(&d->day) || d->day < 1 || d->day > 365) return false;
    } else if (eat('M')) {
      d->kind = Kind::kMonthWeekDay;
      if (!number(&d->month, 2) || !eat('.') || !number(&d->week, 1) || !eat('.') ||
          !number(&d->day, 1)) {
        return false;
      }
      if (d->month < 1 || d->month > 12 || d->week < 1 || d->week > 5 || d->day > 6) return false;
    } else {
      d->kind = Kind::kZeroBasedDay;
      if (!number(&d->day) || d->day > 365) return false;
    }
    d->time = 7200;
    if (eat('/')) return duration(&d->time);
    return true;
  }
};

// The day of the year (0-based) of a rule date in year y.
int64_t rule_day_of_year(int64_t y, const PosixTzRule::Date& d) {
  using Kind = PosixTzRule::Date::Kind;
  switch (d.kind) {
    case Kind::kJulianNoLeap:
      return d.day - 1 + (is_leap(y) && d.day >= 60 ? 1 : 0);
    case Kind::kZeroBasedDay:
      return d.day;
    case Kind::kMonthWeekDay: {
      int64_t first = days_from_civil(y, d.month, 1);
      int first_weekday = static_cast<int>(((first % 7) + 11) % 7);  // 1970-01-01 was a Thursday
      int dom = 1 + (d.day - first_weekday + 7) % 7 + (d.week - 1) * 7;
      while (dom > days_in_month(y, d.month)) dom -= 7;
      return days_from_civil(y, d.month, dom) - days_from_civil(y, 1, 1);
    }
  }
  return 0;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

uint32_t be32(std::string_view d, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(d[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(d[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(d[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(d[at + 3]));
}

int64_t be64(std::string_view d, size_t at) {
  return static_cast<int64_t>((static_cast<uint64_t>(be32(d, at)) << 32) | be32(d, at + 4));
}

}  // namespace

int64_t days_from_civil(int64_t year, int month, int day) {
  // Whole years first, so that months outside 1..12 carry over.
  year += floor_div(month - 1, 12);
  month = static_cast<int>(month - 1 - floor_div(month - 1, 12) * 12) + 1;
  int64_t y = year - (month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468 + (day - 1);
}

CivilTime civil_from_seconds(int64_t seconds) {
  int64_t days = floor_div(seconds, kSecondsPerDay);
  int64_t rem = seconds - days * kSecondsPerDay;
  CivilTime c;
  c.hour = static_cast<int>(rem / 3600);
  c.minute = static_cast<int>(rem % 3600 / 60);
  c.second = static_cast<int>(rem % 60);
  c.weekday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
  return c;
}

std::optional<PosixTzRule> PosixTzRule::parse(std::string_view text) {
  Reader r{text};
  PosixTzRule rule;
  int32_t posix_offset = 0;
  if (!r.name() || !r.duration(&posix_offset)) return std::nullopt;
  rule.std_offset = -posix_offset;
  if (r.done()) return rule;
  if (!r.name()) return std::nullopt;
  rule.dst_offset = rule.std_offset + 3600;
  if (!r.done() && r.peek() != ',') {
    if (!r.duration(&posix_offset)) return std::nullopt;
    rule.dst_offset = -posix_offset;
  }
  if (r.done()) {
    // POSIX leaves the default rules to the implementation; Go uses the US ones.
    rule.start = Date{Date::Kind::kMonthWeekDay, 0, 2, 3, 7200};
    rule.end = Date{Date::Kind::kMonthWeekDay, 0, 1, 11, 7200};
    return rule;
  }
  if (!r.eat(',') || !r.date(&rule.start) || !r.eat(',') || !r.date(&rule.end) || !r.done()) {
    return std::nullopt;
  }
  return rule;
}

int32_t PosixTzRule::offset_at(int64_t unix_seconds) const {
  if (!dst_offset) return std_offset;
  int64_t year = civil_from_seconds(unix_seconds).year;
  int64_t year_start = days_from_civil(year, 1, 1) * kSecondsPerDay;
  int64_t ysec = unix_seconds - year_start;
  // Both transitions in UTC seconds since the start of the (UTC) year.
  int64_t start_sec = rule_day_of_year(year, start) * kSecondsPerDay + start.time - std_offset;
  int64_t end_sec = rule_day_of_year(year, end) * kSecondsPerDay + end.time - *dst_offset;
  bool dst = start_sec <= end_sec ? (ysec >= start_sec && ysec < end_sec)
                                  : (ysec < end_sec || ysec >= start_sec);
  return dst ? *dst_offset : std_offset;
}

std::shared_ptr<const TimeZone> TimeZone::utc() {
  static const std::shared_ptr<const TimeZone> kUtc = [] {
    auto z = std::make_shared<TimeZone>();
    z->name_ = "UTC";
    z->offsets_ = {0};
    z->is_dst_ = {false};
    return z;
  }();
  return kUtc;
}

Result<std::shared_ptr<const TimeZone>> TimeZone::load(std::string_view name,
                                                       const std::string& zoneinfo_dir) {
  if (name.empty() || name == "UTC") return utc();
  if (name.find("..") != std::string_view::npos || name[0] == '/' || name[0] == '\\') {
    return Status::BadRequest("time: invalid location name");
  }
  std::string path = name == "Local" ? "/etc/localtime" : zoneinfo_dir + "/" + std::string(name);
  auto data = read_file(path);
  if (!data.ok()) {
    if (name == "Local") return utc();
    return Status::NotFound("unknown time zone " + std::string(name));
  }
  auto zone = from_tzif(std::string(name), *data);
  if (!zone.ok()) return Status::NotFound("unknown time zone " + std::string(name));
  return zone;
}

Result<std::shared_ptr<const TimeZone>> TimeZone::from_tzif(std::string name,
                                                            std::string_view data) {
  auto bad = [] { return Status::BadRequest("malformed time zone information"); };
  constexpr size_t kHeader = 44;
  if (data.size() < kHeader || data.substr(0, 4) != "TZif") return bad();
  auto counts = [&](size_t at, uint32_t c[6]) {
    for (int k = 0; k < 6; ++k) c[k] = be32(data, at + 20 + 4 * static_cast<size_t>(k));
  };
  uint32_t c[6];
  counts(0, c);
  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt.
  size_t time_size = 4;
  size_t at = kHeader;
  size_t body = c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
  bool v2 = data[4] >= '2';
  if (v2) {
    at += body;
    if (data.size() < at + kHeader || data.substr(at, 4) != "TZif") return bad();
    counts(at, c);
    at += kHeader;
    time_size = 8;
    body = c[3] * 8 + c[3] + c[4] * 6 + c[5] + c[2] * 12 + c[1] + c[0];
  }
  if (data.size() < at + body || c[4] == 0) return bad();
  auto zone = std::make_shared<TimeZone>();
  zone->name_ = std::move(name);
  size_t p = at;
  for (uint32_t k = 0; k < c[3]; ++k, p += time_size) {
    zone->transitions_.push_back(time_size == 8 ? be64(data, p)
                                                : static_cast<int32_t>(be32(data, p)));
  }
  for (uint32_t k = 0; k < c[3]; ++k, ++p) {
    uint8_t type = static_cast<uint8_t>(data[p]);
    if (type >= c[4]) return bad();
    zone->transition_type_.push_back(type);
  }
  for (uint32_t k = 0; k < c[4]; ++k, p += 6) {
    zone->offsets_.push_back(static_cast<int32_t>(be32(data, p)));
    zone->is_dst_.push_back(data[p + 4] != 0);
  }
  if (v2) {
    size_t footer = at + body;
    if (footer < data.size() && data[footer] == '\n') {
      size_t end = data.find('\n', footer + 1);
      if (end != std::string_view::npos && end > footer + 1) {
        zone->footer_ = PosixTzRule::parse(data.substr(footer + 1, end - footer - 1));
      }
    }
  }
  return std::shared_ptr<const TimeZone>(std::move(zone));
}

int32_t TimeZone::offset_at(int64_t unix_seconds) const {
  if (transitions_.empty() || unix_seconds < transitions_.front()) {
    if (transitions_.empty() && footer_) return footer_->offset_at(unix_seconds);
    // lookupFirstZone: the first standard-time type.
    for (size_t k = 0; k < offsets_.size(); ++k) {
      if (!is_dst_[k]) return offsets_[k];
    }
    return offsets_.empty() ? 0 : offsets_[0];
  }
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unix_seconds);
  size_t lo = static_cast<size_t>(std::distance(transitions_.begin(), it)) - 1;
  if (lo == transitions_.size() - 1 && footer_) return footer_->offset_at(unix_seconds);
  return offsets_[transition_type_[lo]];
}

}  // namespace skiff
