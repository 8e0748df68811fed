#include "api/builtin/cron.h"

#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

#include "common/strings.h"
#include "common/time.h"

namespace skiff::api::builtin {
namespace {

struct Bounds {
  uint64_t min, max;
  const std::map<std::string, uint64_t>* names;
};

const std::map<std::string, uint64_t> kMonthNames = {
    {"jan", 1}, {"feb", 2}, {"mar", 3}, {"apr", 4},  {"may", 5},  {"jun", 6},
    {"jul", 7}, {"aug", 8}, {"sep", 9}, {"oct", 10}, {"nov", 11}, {"dec", 12}};
const std::map<std::string, uint64_t> kDowNames = {{"sun", 0}, {"mon", 1}, {"tue", 2}, {"wed", 3},
                                                   {"thu", 4}, {"fri", 5}, {"sat", 6}};

// strconv.Atoi's error for `s`, or the value.
std::optional<std::string> atoi(std::string_view s, int64_t* out) {
  std::string quoted = "\"" + std::string(s) + "\"";
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i >= s.size()) return "strconv.Atoi: parsing " + quoted + ": invalid syntax";
  uint64_t v = 0;
  bool overflow = false;
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + (neg ? 1 : 0);
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      return "strconv.Atoi: parsing " + quoted + ": invalid syntax";
    }
    uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    if (overflow || v > (limit - digit) / 10) {
      overflow = true;
    } else {
      v = v * 10 + digit;
    }
  }
  if (overflow) return "strconv.Atoi: parsing " + quoted + ": value out of range";
  *out = neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return std::nullopt;
}

std::optional<std::string> must_parse_int(std::string_view expr, uint64_t* out) {
  int64_t num = 0;
  if (auto err = atoi(expr, &num)) {
    return "failed to parse int from " + std::string(expr) + ": " + *err;
  }
  if (num < 0) {
    return "negative number (" + std::to_string(num) + ") not allowed: " + std::string(expr);
  }
  *out = static_cast<uint64_t>(num);
  return std::nullopt;
}

std::optional<std::string> parse_int_or_name(std::string_view expr, const Bounds& r,
                                             uint64_t* out) {
  if (r.names != nullptr) {
    auto it = r.names->find(ascii_lower(expr));
    if (it != r.names->end()) {
      *out = it->second;
      return std::nullopt;
    }
  }
  return must_parse_int(expr, out);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::optional<std::string> get_range(std::string_view expr, const Bounds& r) {
  std::vector<std::string_view> range_and_step = split(expr, '/');
  std::vector<std::string_view> low_and_high = split(range_and_step[0], '-');
  bool single_digit = low_and_high.size() == 1;
  uint64_t start = 0, end = 0, step = 1;
  std::string e(expr);
  if (low_and_high[0] == "*" || low_and_high[0] == "?") {
    start = r.min;
    end = r.max;
  } else {
    if (auto err = parse_int_or_name(low_and_high[0], r, &start)) return err;
    switch (low_and_high.size()) {
      case 1:
        end = start;
        break;
      case 2:
        if (auto err = parse_int_or_name(low_and_high[1], r, &end)) return err;
        break;
      default:
        return "too many hyphens: " + e;
    }
  }
  switch (range_and_step.size()) {
    case 1:
      step = 1;
      break;
    case 2:
      if (auto err = must_parse_int(range_and_step[1], &step)) return err;
      if (single_digit) end = r.max;
      break;
    default:
      return "too many slashes: " + e;
  }
  if (start < r.min) {
    return "beginning of range (" + std::to_string(start) + ") below minimum (" +
           std::to_string(r.min) + "): " + e;
  }
  if (end > r.max) {
    return "end of range (" + std::to_string(end) + ") above maximum (" + std::to_string(r.max) +
           "): " + e;
  }
  if (start > end) {
    return "beginning of range (" + std::to_string(start) + ") beyond end of range (" +
           std::to_string(end) + "): " + e;
  }
  if (step == 0) return "step of range should be a positive number: " + e;
  return std::nullopt;
}

std::optional<std::string> get_field(std::string_view field, const Bounds& r) {
  for (std::string_view expr : split(field, ',')) {
    if (expr.empty()) continue;  // strings.FieldsFunc drops empty pieces
    if (auto err = get_range(expr, r)) return err;
  }
  return std::nullopt;
}

std::vector<std::string> fields_of(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > start) out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::optional<std::string> time_zone_error(std::string_view name) {
  std::string n(name);
  if (n.empty() || n == "UTC" || n == "Local") return std::nullopt;
  bool safe = n.find("..") == std::string::npos && n[0] != '/' && n.find('\\') == std::string::npos;
  struct stat st;
  if (safe && ::stat(("/usr/share/zoneinfo/" + n).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    return std::nullopt;
  }
  return "unknown time zone " + n;
}

std::optional<std::string> cron_schedule_error(std::string_view spec_in) {
  std::string spec(spec_in);
  if (spec.empty()) return "empty spec string";
  if (spec.rfind("TZ=", 0) == 0 || spec.rfind("CRON_TZ=", 0) == 0) {
    size_t sp = spec.find(' ');
    size_t eq = spec.find('=');
    std::string zone =
        spec.substr(eq + 1, sp == std::string::npos ? std::string::npos : sp - eq - 1);
    if (auto err = time_zone_error(zone); err || sp == std::string::npos) {
      return "provided bad location " + zone + ": " + err.value_or("unknown time zone " + zone);
    }
    spec = std::string(trim_space(std::string_view(spec).substr(sp)));
  }
  if (!spec.empty() && spec[0] == '@') {
    if (spec == "@yearly" || spec == "@annually" || spec == "@monthly" || spec == "@weekly" ||
        spec == "@daily" || spec == "@midnight" || spec == "@hourly") {
      return std::nullopt;
    }
    const std::string every = "@every ";
    if (spec.rfind(every, 0) == 0) {
      Result<std::chrono::nanoseconds> d =
          parse_go_duration(std::string_view(spec).substr(every.size()));
      if (!d.ok()) return "failed to parse duration " + spec + ": " + d.status().message();
      return std::nullopt;
    }
    return "unrecognized descriptor: " + spec;
  }
  std::vector<std::string> fields = fields_of(spec);
  if (fields.size() != 5) {
    std::string listed = "[";
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) listed += " ";
      listed += fields[i];
    }
    listed += "]";
    return "expected exactly 5 fields, found " + std::to_string(fields.size()) + ": " + listed;
  }
  const Bounds bounds[] = {{0, 59, nullptr},
                           {0, 23, nullptr},
                           {1, 31, nullptr},
                           {1, 12, &kMonthNames},
                           {0, 6, &kDowNames}};
  for (size_t i = 0; i < 5; ++i) {
    if (auto err = get_field(fields[i], bounds[i])) return err;
  }
  return std::nullopt;
}

}  // namespace skiff::api::builtin
