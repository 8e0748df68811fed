// resource.Quantity: fixed-point amounts of CPU, memory, storage, ... ("500m",
// "1Gi", "1e3"), parsed and serialized as k8s.io/apimachinery/pkg/api/resource
// does.
//
// A Quantity is an exact decimal (never a float) that remembers the style of
// its suffix: DecimalSI (m, k, M, ...), BinarySI (Ki, Mi, ...) or
// DecimalExponent (e3). Its string form is canonical: no fractional digits, the
// largest suffix of its style that keeps it exact, so "1000m" -> "1", "0.5" ->
// "500m", "1024Mi" -> "1Gi", "1.5Gi" -> "1536Mi". As in Kubernetes, a string
// that is already canonical is kept exactly as written ("+1" stays "+1", "1E3"
// stays "1E3"). Parsing keeps precision down to nano units, rounding anything
// finer away from zero
// ("0.1n" -> "1n"), and caps BinarySI amounts at 2^63-1.
//
// Quantity is a value type; const methods are thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff {

class Quantity {
 public:
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  // Zero ("0"), DecimalSI.
  Quantity() = default;

  // resource.ParseQuantity. Errors are BadRequest with Kubernetes' messages:
  //   "quantities must match the regular expression
  //    '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'" (empty or malformed
  //    input),
  //   "unable to parse quantity's suffix" (e.g. "1K", "1e"),
  //   "unable to parse numeric part of quantity".
  // Unlike Quantity's JSON decoding, surrounding whitespace is an error; see
  // from_json.
  static Result<Quantity> parse(std::string_view text);

  // Quantity.UnmarshalJSON: a string (trimmed of whitespace) or a number; null
  // is zero. Numbers are parsed from their shortest decimal form, so 1e3 reads
  // as "1000" (Kubernetes, which sees the original bytes, would keep "1e3"; the
  // value is the same).
  static Result<Quantity> from_json(const nlohmann::json& value);

  // resource.NewQuantity / NewMilliQuantity.
  static Quantity from_int(int64_t value, Format format = Format::kDecimalSI);
  static Quantity from_milli(int64_t milli_value, Format format = Format::kDecimalSI);

  // The serialized form (see above); what the API server stores and returns.
  std::string to_string() const;

  // The amount in units of 10^scale, rounded up away from zero: scaled_value(0)
  // is value(), scaled_value(-3) is milli_value(). Kubernetes leaves overflow
  // undefined; here it saturates at INT64_MAX / INT64_MIN.
  int64_t scaled_value(int scale) const;
  int64_t value() const { return scaled_value(0); }
  int64_t milli_value() const { return scaled_value(-3); }
  // Nearest double; may lose precision.
  double as_approximate_double() const;

  // -1, 0 or 1, comparing amounts (the format does not matter: "1Ki" ==
  // "1024").
  int compare(const Quantity& other) const;
  friend bool operator==(const Quantity& a, const Quantity& b) { return a.compare(b) == 0; }
  friend std::strong_ordering operator<=>(const Quantity& a, const Quantity& b) {
    return a.compare(b) <=> 0;
  }

  bool is_zero() const { return digits_.empty(); }
  int sign() const { return digits_.empty() ? 0 : (negative_ ? -1 : 1); }
  Format format() const { return format_; }

 private:
  // The amount is (negative_ ? -1 : 1) * digits_ * 10^exponent_. digits_ has no
  // leading zeros and is empty for zero.
  bool negative_ = false;
  std::string digits_;
  int64_t exponent_ = 0;
  Format format_ = Format::kDecimalSI;
  // The input text, when Kubernetes would keep it as the serialized form.
  std::string original_;
};

}  // namespace skiff
