#include "api/typecheck/formats.h"

#include <array>
#include <cstdio>

namespace skiff::api {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr const char* kQuantityFormatWrong =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr const char* kQuantitySuffix = "unable to parse quantity's suffix";

bool valid_quantity_suffix(std::string_view s) {
  static constexpr std::array<std::string_view, 16> kSuffixes = {
      "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"};
  for (std::string_view k : kSuffixes) {
    if (s == k) return true;
  }
  // Decimal exponent: "e" or "E" followed by a signed integer that fits int32.
  if (s.size() < 2 || (s[0] != 'e' && s[0] != 'E')) return false;
  std::string_view n = s.substr(1);
  bool neg = false;
  if (n[0] == '+' || n[0] == '-') {
    neg = n[0] == '-';
    n.remove_prefix(1);
  }
  if (n.empty() || n.size() > 10) return false;
  int64_t v = 0;
  for (char c : n) {
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  return neg ? v <= 2147483648LL : v <= 2147483647LL;
}

}  // namespace

std::string quantity_error(std::string_view str) {
  // Mirrors resource.parseQuantityString followed by the suffix lookup of ParseQuantity.
  if (str.empty()) return kQuantityFormatWrong;
  size_t pos = 0;
  const size_t end = str.size();
  if (str[0] == '-' || str[0] == '+') pos++;
  while (pos < end && is_digit(str[pos])) pos++;
  if (pos < end && str[pos] == '.') {
    pos++;
    while (pos < end && is_digit(str[pos])) pos++;
  }
  // Go reads a missing number ("-", ".", "Mi") as zero rather than failing.
  const size_t suffix_start = pos;
  static constexpr std::string_view kSuffixChars = "eEinumkKMGTP";
  while (pos < end && kSuffixChars.find(str[pos]) != std::string_view::npos) pos++;
  if (pos < end && (str[pos] == '-' || str[pos] == '+')) pos++;
  while (pos < end && is_digit(str[pos])) pos++;
  if (pos != end) return kQuantityFormatWrong;
  if (!valid_quantity_suffix(str.substr(suffix_start))) return kQuantitySuffix;
  return "";
}

bool is_go_duration(std::string_view s) {
  // Mirrors time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ or "0", bounded to int64.
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s == "0") return true;
  if (s.empty()) return false;
  constexpr double kMaxNanos = 9223372036854775807.0;
  double total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || is_digit(s[0]))) return false;
    double value = 0;
    bool pre = false, post = false;
    while (!s.empty() && is_digit(s[0])) {
      value = value * 10 + (s[0] - '0');
      if (value > kMaxNanos) return false;
      s.remove_prefix(1);
      pre = true;
    }
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      double scale = 0.1;
      while (!s.empty() && is_digit(s[0])) {
        value += (s[0] - '0') * scale;
        scale /= 10;
        s.remove_prefix(1);
        post = true;
      }
    }
    if (!pre && !post) return false;
    size_t i = 0;
    while (i < s.size() && s[i] != '.' && !is_digit(s[i])) i++;
    if (i == 0) return false;
    std::string_view unit = s.substr(0, i);
    s.remove_prefix(i);
    double mult;
    if (unit == "ns") {
      mult = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      mult = 1e3;
    } else if (unit == "ms") {
      mult = 1e6;
    } else if (unit == "s") {
      mult = 1e9;
    } else if (unit == "m") {
      mult = 60e9;
    } else if (unit == "h") {
      mult = 3600e9;
    } else {
      return false;
    }
    total += value * mult;
    if (total > kMaxNanos) return false;
  }
  return true;
}

namespace {
// Writes the fraction of v/10^prec into the tail of buf (ending before w), omitting trailing
// zeros and the point when the fraction is zero, as Go's fmtFrac. Returns the new start.
size_t fmt_frac(char* buf, size_t w, uint64_t& v, int prec) {
  bool print = false;
  for (int i = 0; i < prec; i++) {
    uint64_t digit = v % 10;
    print = print || digit != 0;
    if (print) buf[--w] = static_cast<char>('0' + digit);
    v /= 10;
  }
  if (print) buf[--w] = '.';
  return w;
}

size_t fmt_int(char* buf, size_t w, uint64_t v) {
  if (v == 0) {
    buf[--w] = '0';
  } else {
    while (v > 0) {
      buf[--w] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  }
  return w;
}
}  // namespace

std::string format_go_duration(int64_t nanos) {
  char buf[40];
  size_t w = sizeof(buf);
  uint64_t u = static_cast<uint64_t>(nanos);
  const bool neg = nanos < 0;
  if (neg) u = ~u + 1;
  constexpr uint64_t kSecond = 1000000000ULL;
  if (u < kSecond) {
    int prec = 0;
    buf[--w] = 's';
    if (u == 0) return "0s";
    if (u < 1000ULL) {
      prec = 0;
      buf[--w] = 'n';
    } else if (u < 1000000ULL) {
      prec = 3;
      buf[--w] = '\xB5';  // U+00B5 MICRO SIGN, as Go writes it
      buf[--w] = '\xC2';
    } else {
      prec = 6;
      buf[--w] = 'm';
    }
    w = fmt_frac(buf, w, u, prec);
    w = fmt_int(buf, w, u);
  } else {
    buf[--w] = 's';
    w = fmt_frac(buf, w, u, 9);
    w = fmt_int(buf, w, u % 60);
    u /= 60;
    if (u > 0) {
      buf[--w] = 'm';
      w = fmt_int(buf, w, u % 60);
      u /= 60;
      if (u > 0) {
        buf[--w] = 'h';
        w = fmt_int(buf, w, u);
      }
    }
  }
  if (neg) buf[--w] = '-';
  return std::string(buf + w, sizeof(buf) - w);
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

bool read_digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; i++) {
    if (!is_digit(s[i])) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<Timestamp> parse_rfc3339(std::string_view s) {
  int year, month, day, hour, minute, second;
  if (s.size() < 20 || !read_digits(s, 0, 4, year) || s[4] != '-' || !read_digits(s, 5, 2, month) ||
      s[7] != '-' || !read_digits(s, 8, 2, day) || s[10] != 'T' || !read_digits(s, 11, 2, hour) ||
      s[13] != ':' || !read_digits(s, 14, 2, minute) || s[16] != ':' ||
      !read_digits(s, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 ||
      day > static_cast<int>(days_in_month(year, static_cast<unsigned>(month))) || hour > 23 ||
      minute > 59 || second > 59) {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t nanos = 0;
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    pos++;
    size_t digits = 0;
    while (pos < s.size() && is_digit(s[pos])) {
      if (digits < 9) nanos = nanos * 10 + (s[pos] - '0');
      digits++;
      pos++;
    }
    if (digits == 0) return std::nullopt;
    for (size_t i = digits; i < 9; i++) nanos *= 10;
  }
  int64_t offset = 0;
  if (pos < s.size() && s[pos] == 'Z') {
    pos++;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!read_digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !read_digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  Timestamp t;
  t.seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset;
  t.nanos = static_cast<int32_t>(nanos);
  return t;
}

std::optional<std::string> format_rfc3339(Timestamp t, int fraction_digits) {
  // Bounds keep the arithmetic below far from overflow; the year check rejects the rest.
  constexpr int64_t kMinSeconds = -62167219200;  // 0000-01-01T00:00:00Z
  constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
  if (t.seconds < kMinSeconds || t.seconds > kMaxSeconds || t.nanos < 0 || t.nanos >= 1000000000) {
    return std::nullopt;
  }
  int64_t days = t.seconds / 86400;
  int64_t rem = t.seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char buf[48];
  int n = std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02d:%02d:%02d",
                        static_cast<long long>(y), m, d, static_cast<int>(rem / 3600),
                        static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (fraction_digits > 0) {
    std::snprintf(buf, sizeof(buf), ".%09d", t.nanos);
    out.append(buf, 1 + static_cast<size_t>(fraction_digits > 9 ? 9 : fraction_digits));
  }
  out += 'Z';
  return out;
}

namespace {
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::optional<std::string> base64_decode(std::string_view s, size_t* error_offset) {
  std::string out;
  out.reserve(s.size() / 4 * 3);
  uint32_t quantum = 0;
  int have = 0;     // sextets in the current quantum
  int padding = 0;  // '=' seen in the current (final) quantum
  size_t quantum_start = 0;
  auto fail = [&](size_t at) -> std::optional<std::string> {
    if (error_offset != nullptr) *error_offset = at;
    return std::nullopt;
  };
  for (size_t i = 0; i < s.size(); i++) {
    const char c = s[i];
    if (c == '\r' || c == '\n') continue;
    if (have == 0 && padding == 0) quantum_start = i;
    if (padding > 0) {
      // After the first '=', only '=' may complete the quantum; nothing may follow it.
      if (c != '=' || have + padding >= 4) return fail(i);
      padding++;
      continue;
    }
    if (c == '=') {
      if (have < 2) return fail(i);
      padding = 1;
      continue;
    }
    const int v = base64_value(c);
    if (v < 0) return fail(i);
    quantum = (quantum << 6) | static_cast<uint32_t>(v);
    if (++have == 4) {
      out.push_back(static_cast<char>(quantum >> 16));
      out.push_back(static_cast<char>(quantum >> 8));
      out.push_back(static_cast<char>(quantum));
      quantum = 0;
      have = 0;
    }
  }
  if (padding > 0) {
    if (have + padding != 4) return fail(s.size());
    if (have == 2) {
      out.push_back(static_cast<char>(quantum >> 4));
    } else {
      out.push_back(static_cast<char>(quantum >> 10));
      out.push_back(static_cast<char>(quantum >> 2));
    }
  } else if (have != 0) {
    return fail(quantum_start);
  }
  return out;
}

std::string base64_encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len = 0;
    uint32_t min = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      out += static_cast<char>(c);
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; k++) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (cc & 0x3F);
      }
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i++;
    }
  }
  return out;
}

}  // namespace skiff::api
