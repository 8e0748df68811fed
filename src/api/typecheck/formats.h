// The textual forms of Kubernetes' scalar types, as their Go implementations read and write
// them: resource.Quantity, metav1.Time / MicroTime (RFC 3339), metav1.Duration (Go
// time.Duration strings) and []byte (standard base64).
//
// Strict field validation (typecheck.h), protobuf decoding (protobuf.h) and CRD printer columns
// share these so that a value accepted on one path is accepted on all of them.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace skiff::api {

// The message resource.ParseQuantity fails with for `s`, or "" when `s` is a well-formed
// quantity ("500m", "1Gi", "1e3", "-0.5", ...). The messages are Kubernetes' own, e.g.
// "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".
std::string quantity_error(std::string_view s);

// True when `s` parses with Go's time.ParseDuration ("1h0m0s", "1.5s", "300ms", "-2m", "0").
bool is_go_duration(std::string_view s);
// Formats nanoseconds as Go's time.Duration.String() does: "1h0m0s", "1.5s", "300ms", "0s".
std::string format_go_duration(int64_t nanos);

// A point in time as seconds since the Unix epoch plus nanoseconds (0 <= nanos < 1e9).
struct Timestamp {
  int64_t seconds = 0;
  int32_t nanos = 0;
};

// Parses an RFC 3339 time ("2024-01-02T03:04:05Z", "...05.123+02:00") as Go's time.Parse with
// layout time.RFC3339 does (fractional seconds allowed). nullopt when malformed or out of range.
std::optional<Timestamp> parse_rfc3339(std::string_view s);
// Formats in UTC as "2006-01-02T15:04:05Z" (fraction_digits 0, metav1.Time) or
// "2006-01-02T15:04:05.000000Z" (fraction_digits 6, metav1.MicroTime). nullopt for years
// outside [0, 9999], which RFC 3339 cannot express.
std::optional<std::string> format_rfc3339(Timestamp t, int fraction_digits);
// Seconds since the epoch of 0001-01-01T00:00:00Z, Go's zero time.Time; metav1.Time writes it
// as JSON null.
inline constexpr int64_t kGoZeroTimeSeconds = -62135596800;

// Decodes standard base64 with padding, skipping '\r' and '\n' as Go's encoding/json does for
// []byte. On failure returns nullopt and, if error_offset is set, the input byte offset Go
// would report ("illegal base64 data at input byte N").
std::optional<std::string> base64_decode(std::string_view s, size_t* error_offset = nullptr);
std::string base64_encode(std::string_view bytes);

// Replaces invalid UTF-8 sequences with U+FFFD, as Go's encoding/json does when it writes
// strings; nlohmann::json refuses to serialize invalid UTF-8.
std::string sanitize_utf8(std::string_view s);

}  // namespace skiff::api
