#include "common/time.h"

#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>

namespace skiff {
namespace {

using std::chrono::days;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr char kRfc3339Layout[] = "2006-01-02T15:04:05Z07:00";
constexpr char kHex[] = "0123456789abcdef";

// Go's time.quote: non-ASCII and control bytes as \xNN, '"' and '\' escaped.
std::string time_quote(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || c < 0x20) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      if (c == '"' || c == '\\') out += '\\';
      out += ch;
    }
  }
  return out + "\"";
}

Timestamp to_timestamp(TimePoint t) {
  const auto since = std::chrono::duration_cast<nanoseconds>(t.time_since_epoch());
  const auto secs = std::chrono::floor<seconds>(since);
  return {secs.count(), static_cast<int32_t>((since - secs).count())};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// An RFC 3339 parser that follows Go's time.Parse with the RFC3339 layout
// element by element, so that what it accepts and how it complains match.
class Rfc3339Parser {
 public:
  explicit Rfc3339Parser(std::string_view text) : text_(text), rest_(text) {}

  Result<Timestamp> parse() {
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    int64_t nanos = 0;
    int offset_seconds = 0;
    if (!fixed_digits(4, &year)) return cannot_parse("2006");
    if (!literal('-')) return cannot_parse("-");
    if (!fixed_digits(2, &month)) return cannot_parse("01");
    if (month < 1 || month > 12) return out_of_range("month");
    if (!literal('-')) return cannot_parse("-");
    if (!fixed_digits(2, &day)) return cannot_parse("02");
    // The day is checked against the month after everything else, as Go does.
    if (!literal('T')) return cannot_parse("T");
    if (!hour_digits(&hour)) return cannot_parse("15");
    if (hour >= 24) return out_of_range("hour");
    if (!literal(':')) return cannot_parse(":");
    if (!fixed_digits(2, &minute)) return cannot_parse("04");
    if (minute >= 60) return out_of_range("minute");
    if (!literal(':')) return cannot_parse(":");
    if (!fixed_digits(2, &second)) return cannot_parse("05");
    if (second >= 60) return out_of_range("second");
    if (rest_.size() >= 2 && (rest_[0] == '.' || rest_[0] == ',') && is_digit(rest_[1])) {
      size_t n = 1;
      while (n < rest_.size() && is_digit(rest_[n])) ++n;
      int64_t scale = 100'000'000;
      for (size_t i = 1; i < n && i <= 9; ++i, scale /= 10) nanos += (rest_[i] - '0') * scale;
      rest_.remove_prefix(n);
    }
    if (!rest_.empty() && rest_[0] == 'Z') {
      rest_.remove_prefix(1);
    } else {
      if (rest_.size() < 6 || (rest_[0] != '+' && rest_[0] != '-') || rest_[3] != ':' ||
          !is_digit(rest_[1]) || !is_digit(rest_[2]) || !is_digit(rest_[4]) ||
          !is_digit(rest_[5])) {
        return cannot_parse("Z07:00");
      }
      const int hh = (rest_[1] - '0') * 10 + (rest_[2] - '0');
      const int mm = (rest_[4] - '0') * 10 + (rest_[5] - '0');
      if (hh > 24) return out_of_range("time zone offset hour");
      if (mm > 60) return out_of_range("time zone offset minute");
      offset_seconds = (hh * 3600 + mm * 60) * (rest_[0] == '-' ? -1 : 1);
      rest_.remove_prefix(6);
    }
    if (!rest_.empty()) {
      return Status::BadRequest("parsing time " + time_quote(text_) +
                                ": extra text: " + time_quote(rest_));
    }
    const std::chrono::year_month_day ymd{std::chrono::year(year),
                                          std::chrono::month(static_cast<unsigned>(month)),
                                          std::chrono::day(static_cast<unsigned>(day))};
    if (!ymd.ok()) return out_of_range("day");
    const seconds since_epoch = std::chrono::sys_days(ymd).time_since_epoch() +
                                std::chrono::hours(hour) + std::chrono::minutes(minute) +
                                seconds(second) - seconds(offset_seconds);
    return Timestamp{since_epoch.count(), static_cast<int32_t>(nanos)};
  }

  // A time_point counts nanoseconds in 64 bits: about 1678 to 2261.
  Result<TimePoint> to_time_point(const Timestamp& t) const {
    constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
    if (t.seconds > kMaxSeconds || t.seconds < -kMaxSeconds) {
      return Status::BadRequest("parsing time " + time_quote(text_) +
                                ": time outside the supported range (years 1678 to 2261)");
    }
    return TimePoint(
        std::chrono::duration_cast<TimePoint::duration>(seconds(t.seconds) + nanoseconds(t.nanos)));
  }

 private:
  bool fixed_digits(size_t n, int* out) {
    if (rest_.size() < n) return false;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!is_digit(rest_[i])) return false;
      v = v * 10 + (rest_[i] - '0');
    }
    *out = v;
    rest_.remove_prefix(n);
    return true;
  }

  // Go reads the "15" element with one or two digits.
  bool hour_digits(int* out) {
    if (rest_.empty() || !is_digit(rest_[0])) return false;
    const size_t n = rest_.size() >= 2 && is_digit(rest_[1]) ? 2 : 1;
    return fixed_digits(n, out);
  }

  bool literal(char c) {
    if (rest_.empty() || rest_[0] != c) return false;
    rest_.remove_prefix(1);
    return true;
  }

  Status cannot_parse(const char* element) const {
    return Status::BadRequest("parsing time " + time_quote(text_) + " as " +
                              time_quote(kRfc3339Layout) + ": cannot parse " + time_quote(rest_) +
                              " as " + time_quote(element));
  }

  Status out_of_range(const char* what) const {
    return Status::BadRequest("parsing time " + time_quote(text_) + ": " + what + " out of range");
  }

  std::string_view text_;
  std::string_view rest_;
};

// Go's fmtFrac: writes v/10^prec's fraction (without trailing zeros) before
// `end`.
void prepend_fraction(std::string& out, uint64_t& v, int prec) {
  std::string frac;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    const uint64_t digit = v % 10;
    print = print || digit != 0;
    if (print) frac.insert(frac.begin(), static_cast<char>('0' + digit));
    v /= 10;
  }
  if (print) out.insert(0, "." + frac);
}

std::optional<uint64_t> leading_int(std::string_view& s, bool* overflow) {
  uint64_t x = 0;
  size_t i = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    if (x > (uint64_t{1} << 63) / 10) {
      *overflow = true;
      return std::nullopt;
    }
    x = x * 10 + static_cast<uint64_t>(s[i] - '0');
    if (x > uint64_t{1} << 63) {
      *overflow = true;
      return std::nullopt;
    }
  }
  s.remove_prefix(i);
  return x;
}

}  // namespace

TimePoint now() { return std::chrono::system_clock::now(); }

std::optional<std::string> format_rfc3339(Timestamp t, int fraction_digits) {
  constexpr int64_t kMinSeconds = -62167219200;  // 0000-01-01T00:00:00Z
  constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
  if (t.seconds < kMinSeconds || t.seconds > kMaxSeconds || t.nanos < 0 ||
      t.nanos >= 1'000'000'000) {
    return std::nullopt;
  }
  const seconds secs(t.seconds);
  const auto day = std::chrono::floor<days>(secs);
  const std::chrono::year_month_day ymd{std::chrono::sys_days(day)};
  const std::chrono::hh_mm_ss<seconds> hms(secs - day);
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02lld",
                        static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                        static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                        static_cast<int>(hms.minutes().count()),
                        static_cast<long long>(hms.seconds().count()));
  if (fraction_digits > 0) {
    char frac[16];
    std::snprintf(frac, sizeof(frac), ".%09d", static_cast<int>(t.nanos));
    const int digits = fraction_digits > 9 ? 9 : fraction_digits;
    n += std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), "%.*s", digits + 1, frac);
  }
  return std::string(buf, static_cast<size_t>(n)) + "Z";
}

// TimePoint spans about 1678 to 2261, always within RFC 3339's years, so
// formatting cannot fail.
std::string format_rfc3339(TimePoint t) { return *format_rfc3339(to_timestamp(t), 0); }

std::string format_rfc3339_micro(TimePoint t) { return *format_rfc3339(to_timestamp(t), 6); }

Result<Timestamp> parse_rfc3339_timestamp(std::string_view text) {
  return Rfc3339Parser(text).parse();
}

Result<TimePoint> parse_rfc3339(std::string_view text) {
  Rfc3339Parser parser(text);
  Result<Timestamp> t = parser.parse();
  if (!t.ok()) return t.status();
  return parser.to_time_point(*t);
}

std::string human_duration(nanoseconds d) {
  // Truncates toward zero, as Go's int() does.
  return human_duration_seconds(d.count() / 1'000'000'000);
}

std::string human_duration_seconds(int64_t secs) {
  if (secs < -1) return "<invalid>";
  if (secs < 0) return "0s";
  if (secs < 60 * 2) return std::to_string(secs) + "s";
  const int64_t minutes = secs / 60;
  if (minutes < 10) {
    const int64_t s = secs % 60;
    if (s == 0) return std::to_string(minutes) + "m";
    return std::to_string(minutes) + "m" + std::to_string(s) + "s";
  }
  if (minutes < 60 * 3) return std::to_string(minutes) + "m";
  const int64_t hours = secs / 3600;
  if (hours < 8) {
    const int64_t m = minutes % 60;
    if (m == 0) return std::to_string(hours) + "h";
    return std::to_string(hours) + "h" + std::to_string(m) + "m";
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    const int64_t h = hours % 24;
    if (h == 0) return std::to_string(hours / 24) + "d";
    return std::to_string(hours / 24) + "d" + std::to_string(h) + "h";
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    const int64_t dy = (hours / 24) % 365;
    if (dy == 0) return std::to_string(hours / 24 / 365) + "y";
    return std::to_string(hours / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(hours / 24 / 365) + "y";
}

std::string short_human_duration(nanoseconds d) {
  const int64_t secs = d.count() / 1'000'000'000;
  if (secs < -1) return "<invalid>";
  if (secs < 0) return "0s";
  if (secs < 60) return std::to_string(secs) + "s";
  const int64_t minutes = secs / 60;
  if (minutes < 60) return std::to_string(minutes) + "m";
  const int64_t hours = secs / 3600;
  if (hours < 24) return std::to_string(hours) + "h";
  if (hours < 24 * 365) return std::to_string(hours / 24) + "d";
  return std::to_string(hours / 24 / 365) + "y";
}

std::string format_go_duration(nanoseconds d) {
  const bool negative = d.count() < 0;
  uint64_t u = negative ? 0 - static_cast<uint64_t>(d.count()) : static_cast<uint64_t>(d.count());
  std::string out;
  if (u < 1'000'000'000) {
    int prec;
    std::string unit;
    if (u == 0) return "0s";
    if (u < 1'000) {
      prec = 0, unit = "ns";
    } else if (u < 1'000'000) {
      prec = 3, unit = "\xC2\xB5s";  // U+00B5 MICRO SIGN, as Go writes it
    } else {
      prec = 6, unit = "ms";
    }
    out = unit;
    prepend_fraction(out, u, prec);
    out.insert(0, std::to_string(u));
  } else {
    out = "s";
    prepend_fraction(out, u, 9);
    out.insert(0, std::to_string(u % 60));
    u /= 60;
    if (u > 0) {
      out.insert(0, std::to_string(u % 60) + "m");
      u /= 60;
      if (u > 0) out.insert(0, std::to_string(u) + "h");
    }
  }
  if (negative) out.insert(0, "-");
  return out;
}

Result<nanoseconds> parse_go_duration(std::string_view text) {
  const std::string orig = time_quote(text);
  const auto invalid = [&] { return Status::BadRequest("time: invalid duration " + orig); };
  std::string_view s = text;
  uint64_t total = 0;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return nanoseconds(0);
  if (s.empty()) return invalid();
  constexpr uint64_t kLimit = uint64_t{1} << 63;
  while (!s.empty()) {
    if (!(s[0] == '.' || is_digit(s[0]))) return invalid();
    const size_t before = s.size();
    bool overflow = false;
    const std::optional<uint64_t> v0 = leading_int(s, &overflow);
    if (!v0) return invalid();
    uint64_t v = *v0;
    const bool pre = before != s.size();
    uint64_t f = 0;
    double scale = 1;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      size_t i = 0;
      bool fraction_overflow = false;
      for (; i < s.size() && is_digit(s[i]); ++i) {
        if (fraction_overflow) continue;
        if (f > (kLimit - 1) / 10) {
          fraction_overflow = true;  // further digits cannot matter
          continue;
        }
        const uint64_t y = f * 10 + static_cast<uint64_t>(s[i] - '0');
        if (y > kLimit) {
          fraction_overflow = true;
          continue;
        }
        f = y;
        scale *= 10;
      }
      post = i > 0;
      s.remove_prefix(i);
    }
    if (!pre && !post) return invalid();
    size_t i = 0;
    while (i < s.size() && s[i] != '.' && !is_digit(s[i])) ++i;
    if (i == 0) return Status::BadRequest("time: missing unit in duration " + orig);
    const std::string_view unit_name = s.substr(0, i);
    s.remove_prefix(i);
    uint64_t unit;
    if (unit_name == "ns") {
      unit = 1;
    } else if (unit_name == "us" || unit_name == "\xC2\xB5s" || unit_name == "\xCE\xBCs") {
      unit = 1'000;
    } else if (unit_name == "ms") {
      unit = 1'000'000;
    } else if (unit_name == "s") {
      unit = 1'000'000'000;
    } else if (unit_name == "m") {
      unit = 60'000'000'000;
    } else if (unit_name == "h") {
      unit = 3'600'000'000'000;
    } else {
      return Status::BadRequest("time: unknown unit " + time_quote(unit_name) + " in duration " +
                                orig);
    }
    if (v > kLimit / unit) return invalid();
    v *= unit;
    if (f > 0) {
      v += static_cast<uint64_t>(static_cast<double>(f) * (static_cast<double>(unit) / scale));
      if (v > kLimit) return invalid();
    }
    total += v;
    if (total > kLimit) return invalid();
  }
  if (negative) return nanoseconds(static_cast<int64_t>(0 - total));
  if (total > kLimit - 1) return invalid();
  return nanoseconds(static_cast<int64_t>(total));
}

const Clock& Clock::real() {
  class RealClock final : public Clock {
   public:
    TimePoint now() const override { return std::chrono::system_clock::now(); }
  };
  static const RealClock* clock = new RealClock();  // never destroyed: usable during shutdown
  return *clock;
}

}  // namespace skiff
