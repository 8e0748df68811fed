#include "common/quantity.h"

#include <charconv>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/strings.h"

namespace skiff {
namespace {

constexpr char kFormatWrong[] =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr char kNumeric[] = "unable to parse numeric part of quantity";
constexpr char kSuffix[] = "unable to parse quantity's suffix";
constexpr char kMaxInt64[] = "9223372036854775807";
constexpr int kNano = -9;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

void strip_leading_zeros(std::string& digits) {
  size_t i = 0;
  while (i < digits.size() && digits[i] == '0') ++i;
  digits.erase(0, i);
}

// digits *= m, for m < 2^32.
void multiply(std::string& digits, uint64_t m) {
  uint64_t carry = 0;
  for (size_t i = digits.size(); i-- > 0;) {
    const uint64_t v = static_cast<uint64_t>(digits[i] - '0') * m + carry;
    digits[i] = static_cast<char>('0' + v % 10);
    carry = v / 10;
  }
  while (carry > 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + carry % 10));
    carry /= 10;
  }
  strip_leading_zeros(digits);
}

// Returns digits % d and stores the quotient in *quotient.
uint64_t divide(const std::string& digits, uint64_t d, std::string* quotient) {
  quotient->clear();
  uint64_t rem = 0;
  for (const char c : digits) {
    rem = rem * 10 + static_cast<uint64_t>(c - '0');
    quotient->push_back(static_cast<char>('0' + rem / d));
    rem %= d;
  }
  strip_leading_zeros(*quotient);
  return rem;
}

// digits += 1.
void increment(std::string& digits) {
  for (size_t i = digits.size(); i-- > 0;) {
    if (digits[i] != '9') {
      ++digits[i];
      return;
    }
    digits[i] = '0';
  }
  digits.insert(digits.begin(), '1');
}

bool any_nonzero(std::string_view digits) {
  return digits.find_first_not_of('0') != std::string_view::npos;
}

// Compares two non-negative amounts digits*10^exp (digits without leading
// zeros).
int compare_magnitude(const std::string& a, int64_t ae, const std::string& b, int64_t be) {
  if (a.empty() || b.empty()) return a.empty() ? (b.empty() ? 0 : -1) : 1;
  const int64_t ao = static_cast<int64_t>(a.size()) + ae;
  const int64_t bo = static_cast<int64_t>(b.size()) + be;
  if (ao != bo) return ao < bo ? -1 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const char x = i < a.size() ? a[i] : '0';
    const char y = i < b.size() ? b[i] : '0';
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

// The pieces of a quantity string, as resource.parseQuantityString finds them.
struct Scanned {
  bool positive = true;
  std::string_view value;  // sign and number, as written
  std::string_view num;    // integer digits without leading zeros ("0" if none)
  std::string_view denom;  // fraction digits
  std::string_view suffix;
};

std::optional<Scanned> scan(std::string_view str) {
  Scanned s;
  size_t pos = 0;
  const size_t end = str.size();
  if (pos < end) {
    if (str[0] == '-') {
      s.positive = false;
      ++pos;
    } else if (str[0] == '+') {
      ++pos;
    }
  }
  for (size_t i = pos;; ++i) {
    if (i >= end) {
      s.num = s.value = "0";
      return s;
    }
    if (str[i] != '0') break;
    ++pos;
  }
  for (size_t i = pos;; ++i) {
    if (i >= end) {
      s.num = str.substr(pos);
      s.value = str;
      return s;
    }
    if (!is_digit(str[i])) {
      s.num = str.substr(pos, i - pos);
      pos = i;
      break;
    }
  }
  if (s.num.empty()) s.num = "0";
  if (pos < end && str[pos] == '.') {
    ++pos;
    for (size_t i = pos;; ++i) {
      if (i >= end) {
        s.denom = str.substr(pos);
        s.value = str;
        return s;
      }
      if (!is_digit(str[i])) {
        s.denom = str.substr(pos, i - pos);
        pos = i;
        break;
      }
    }
  }
  s.value = str.substr(0, pos);
  const size_t suffix_start = pos;
  constexpr std::string_view kSuffixChars = "eEinumkKMGTP";
  for (size_t i = pos;; ++i) {
    if (i >= end) {
      s.suffix = str.substr(suffix_start);
      return s;
    }
    if (kSuffixChars.find(str[i]) == std::string_view::npos) {
      pos = i;
      break;
    }
  }
  if (pos < end && (str[pos] == '-' || str[pos] == '+')) ++pos;
  for (size_t i = pos;; ++i) {
    if (i >= end) {
      s.suffix = str.substr(suffix_start);
      return s;
    }
    if (!is_digit(str[i])) return std::nullopt;
  }
}

struct Suffix {
  int base;
  int64_t exponent;
  Quantity::Format format;
};

std::optional<Suffix> interpret(std::string_view s) {
  using F = Quantity::Format;
  static constexpr std::pair<std::string_view, int> kDecimal[] = {
      {"n", -9}, {"u", -6}, {"m", -3}, {"", 0},   {"k", 3},
      {"M", 6},  {"G", 9},  {"T", 12}, {"P", 15}, {"E", 18},
  };
  static constexpr std::pair<std::string_view, int> kBinary[] = {
      {"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}, {"Pi", 50}, {"Ei", 60},
  };
  for (const auto& [name, exp] : kDecimal) {
    if (s == name) return Suffix{10, exp, F::kDecimalSI};
  }
  for (const auto& [name, exp] : kBinary) {
    if (s == name) return Suffix{2, exp, F::kBinarySI};
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    std::string_view n = s.substr(1);
    if (n[0] == '+') n.remove_prefix(1);
    int32_t exp = 0;  // Kubernetes keeps the exponent in an int32
    const auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), exp);
    if (n.empty() || n[0] == '+' || ec != std::errc() || ptr != n.data() + n.size()) {
      return std::nullopt;
    }
    return Suffix{10, exp, F::kDecimalExponent};
  }
  return std::nullopt;
}

std::string_view decimal_si_suffix(int64_t exp, bool* ok) {
  *ok = true;
  switch (exp) {
    case -9:
      return "n";
    case -6:
      return "u";
    case -3:
      return "m";
    case 0:
      return "";
    case 3:
      return "k";
    case 6:
      return "M";
    case 9:
      return "G";
    case 12:
      return "T";
    case 15:
      return "P";
    case 18:
      return "E";
    default:
      *ok = false;
      return "";
  }
}

}  // namespace

Result<Quantity> Quantity::parse(std::string_view str) {
  if (str.empty()) return Status::BadRequest(kFormatWrong);
  Quantity q;
  if (str == "0") {
    q.original_ = "0";
    return q;
  }
  const std::optional<Scanned> scanned = scan(str);
  if (!scanned) return Status::BadRequest(kFormatWrong);
  const Scanned& s = *scanned;
  const std::optional<Suffix> suffix = interpret(s.suffix);
  if (!suffix) return Status::BadRequest(kSuffix);
  q.format_ = suffix->format;
  q.negative_ = !s.positive;

  // Kubernetes' int64 fast path. Besides being fast there, it decides whether
  // the input is already canonical and is kept verbatim as the serialized form;
  // the value it computes is the same as the general path's.
  int64_t precision = 0;
  int64_t scale = 0;
  uint64_t mantissa = 1;
  const auto digit_count = static_cast<int64_t>(s.num.size() + s.denom.size());
  if (suffix->format == Format::kBinarySI) {
    if (suffix->exponent >= 0 && s.denom.empty()) {
      mantissa = uint64_t{1} << suffix->exponent;
      precision = 15 - static_cast<int64_t>(s.num.size()) -
                  static_cast<int64_t>(static_cast<float>(suffix->exponent) * 3 / 10) - 1;
    } else {
      precision = -1;
    }
  } else {
    scale = suffix->exponent;
    precision = 18 - digit_count;
  }
  if (precision >= 0) {
    scale -= static_cast<int64_t>(s.denom.size());
    if (scale >= kNano) {
      std::string shifted = std::string(s.num) + std::string(s.denom);
      uint64_t value = 0;
      std::from_chars(shifted.data(), shifted.data() + shifted.size(), value);
      const unsigned __int128 product = static_cast<unsigned __int128>(value) * mantissa;
      if (product <= static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) {
        bool canonical;
        if (suffix->format == Format::kBinarySI) {
          canonical = suffix->exponent % 10 == 0 && (value & 0x07) != 0;
        } else {
          canonical =
              scale % 3 == 0 &&
              !(shifted.size() >= 3 && shifted.compare(shifted.size() - 3, 3, "000") == 0) &&
              shifted[0] != '0';
        }
        if (canonical) q.original_ = std::string(str);
        q.digits_ = std::to_string(static_cast<uint64_t>(product));
        strip_leading_zeros(q.digits_);
        q.exponent_ = scale;
        if (q.digits_.empty()) q.negative_ = false;
        return q;
      }
    }
  }

  // The general path (inf.Dec in Kubernetes).
  std::string_view v = s.value;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) v.remove_prefix(1);
  const size_t dot = v.find('.');
  const std::string_view int_part = v.substr(0, dot);
  const std::string_view frac_part =
      dot == std::string_view::npos ? std::string_view() : v.substr(dot + 1);
  if (int_part.empty() && frac_part.empty()) return Status::BadRequest(kNumeric);
  q.digits_ = std::string(int_part) + std::string(frac_part);
  strip_leading_zeros(q.digits_);
  q.exponent_ = -static_cast<int64_t>(frac_part.size());
  if (suffix->base == 10) {
    q.exponent_ += suffix->exponent;
  } else {
    // exponent is 10..60: multiply by 2^exponent in steps that keep the carry
    // small.
    for (int64_t left = suffix->exponent; left > 0; left -= 30) {
      multiply(q.digits_, uint64_t{1} << std::min<int64_t>(left, 30));
    }
  }
  if (q.digits_.empty()) {
    q.negative_ = false;
    return q;
  }
  // Round anything finer than nano up (away from zero): asking for some
  // resource gets some.
  if (q.exponent_ < kNano) {
    const uint64_t drop = static_cast<uint64_t>(kNano - q.exponent_);
    if (drop >= q.digits_.size()) {
      q.digits_ = "1";
    } else {
      const bool inexact = any_nonzero(std::string_view(q.digits_).substr(q.digits_.size() - drop));
      q.digits_.resize(q.digits_.size() - drop);
      if (inexact) increment(q.digits_);
    }
    q.exponent_ = kNano;
  }
  if (q.format_ == Format::kBinarySI) {
    if (compare_magnitude(q.digits_, q.exponent_, kMaxInt64, 0) > 0) {
      q.digits_ = kMaxInt64;
      q.exponent_ = 0;
    }
    if (static_cast<int64_t>(q.digits_.size()) + q.exponent_ <= 0) {
      q.format_ = Format::kDecimalSI;  // below 1: no binary suffix can show it
    }
  }
  return q;
}

Result<Quantity> Quantity::from_json(const nlohmann::json& value) {
  if (value.is_null()) return Quantity();
  if (value.is_string()) return parse(trim_space(value.get_ref<const std::string&>()));
  if (value.is_number_integer()) {
    return parse(value.is_number_unsigned() ? std::to_string(value.get<uint64_t>())
                                            : std::to_string(value.get<int64_t>()));
  }
  if (value.is_number_float()) {
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof(buf), value.get<double>());
    return parse(std::string_view(buf, static_cast<size_t>(res.ptr - buf)));
  }
  return Status::BadRequest(kFormatWrong);
}

Quantity Quantity::from_int(int64_t value, Format format) {
  Quantity q;
  q.format_ = format;
  q.negative_ = value < 0;
  const uint64_t magnitude =
      value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  if (magnitude != 0) q.digits_ = std::to_string(magnitude);
  return q;
}

Quantity Quantity::from_milli(int64_t milli_value, Format format) {
  Quantity q = from_int(milli_value, format);
  q.exponent_ = -3;
  return q;
}

std::string Quantity::to_string() const {
  if (!original_.empty()) return original_;
  if (digits_.empty()) return "0";
  const std::string sign = negative_ ? "-" : "";
  Format format = format_;
  std::string integer;  // the amount rounded to an integer, for BinarySI
  if (format == Format::kBinarySI) {
    if (compare_magnitude(digits_, exponent_, "1024", 0) < 0 || exponent_ > 40) {
      format = Format::kDecimalSI;
    } else if (exponent_ >= 0) {
      integer = digits_ + std::string(static_cast<size_t>(exponent_), '0');
    } else {
      const size_t drop = static_cast<size_t>(-exponent_);
      if (drop >= digits_.size() ||
          any_nonzero(std::string_view(digits_).substr(digits_.size() - drop))) {
        format = Format::kDecimalSI;  // rounding would lose precision
      } else {
        integer = digits_.substr(0, digits_.size() - drop);
      }
    }
  }
  if (format == Format::kBinarySI) {
    static constexpr std::string_view kBinary[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    size_t power = 0;
    std::string quotient;
    while (power + 1 < std::size(kBinary) && divide(integer, 1024, &quotient) == 0) {
      integer = std::move(quotient);
      ++power;
    }
    return sign + integer + std::string(kBinary[power]);
  }
  // Move factors of ten into the exponent, then make the exponent a multiple of
  // three.
  std::string digits = digits_;
  int64_t exp = exponent_;
  const size_t last = digits.find_last_not_of('0');
  exp += static_cast<int64_t>(digits.size() - last - 1);
  digits.resize(last + 1);
  while (exp % 3 != 0) {
    digits += '0';
    --exp;
  }
  bool ok = false;
  std::string_view suffix;
  if (format == Format::kDecimalSI) suffix = decimal_si_suffix(exp, &ok);
  std::string out = sign + digits;
  if (ok) return out + std::string(suffix);
  if (exp != 0) out += "e" + std::to_string(exp);
  return out;
}

int64_t Quantity::scaled_value(int scale) const {
  if (digits_.empty()) return 0;
  const int64_t shift = exponent_ - scale;
  bool saturate = false;
  unsigned __int128 magnitude = 0;
  auto parse_digits = [&](std::string_view d) {
    if (d.size() > 20) {
      saturate = true;
      return;
    }
    for (const char c : d) magnitude = magnitude * 10 + static_cast<unsigned>(c - '0');
  };
  if (shift >= 0) {
    if (static_cast<int64_t>(digits_.size()) + shift > 20) {
      saturate = true;
    } else {
      parse_digits(digits_);
      for (int64_t i = 0; i < shift; ++i) magnitude *= 10;
    }
  } else {
    const uint64_t drop = static_cast<uint64_t>(-shift);
    if (drop >= digits_.size()) {
      magnitude = 1;
    } else {
      const std::string_view d = digits_;
      parse_digits(d.substr(0, d.size() - drop));
      if (any_nonzero(d.substr(d.size() - drop))) magnitude += 1;
    }
  }
  const unsigned __int128 limit =
      static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max()) + (negative_ ? 1 : 0);
  if (saturate || magnitude > limit) {
    return negative_ ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  const auto m = static_cast<uint64_t>(magnitude);
  return negative_ ? static_cast<int64_t>(0 - m) : static_cast<int64_t>(m);
}

double Quantity::as_approximate_double() const {
  if (digits_.empty()) return 0;
  const std::string text = (negative_ ? "-" : "") + digits_ + "e" + std::to_string(exponent_);
  return std::strtod(text.c_str(), nullptr);
}

int Quantity::compare(const Quantity& other) const {
  const int a = sign();
  const int b = other.sign();
  if (a != b) return a < b ? -1 : 1;
  const int m = compare_magnitude(digits_, exponent_, other.digits_, other.exponent_);
  return negative_ ? -m : m;
}

}  // namespace skiff
