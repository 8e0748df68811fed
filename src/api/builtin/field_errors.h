// Field-level validation errors worded exactly as k8s.io/apimachinery/pkg/util/validation/field
// words them, and their conversion into an Invalid Status as apierrors.NewInvalid builds it.
//
// Values in messages are rendered the way Go's fmt renders them in field.Error.ErrorBody():
// strings with %q, integers and booleans with %v, maps, slices and structs with %#v. The go_*
// helpers below produce those renderings from JSON values.
//
// Private to src/api/builtin. Thread-safety: a FieldErrors is a plain value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/builtin/json_util.h"
#include "common/status.h"
#include "common/strings.h"

namespace skiff::api::builtin {

// A field path as field.Path.String() prints it: "spec.containers[0].name", "data[key]".
class Path {
 public:
  Path() = default;
  explicit Path(std::string root) : s_(std::move(root)) {}
  Path child(std::string_view name) const;
  Path index(size_t i) const;
  Path key(std::string_view k) const;
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

enum class ErrorType {
  kNotFound,      // "Not found", FieldValueNotFound
  kRequired,      // "Required value", FieldValueRequired
  kDuplicate,     // "Duplicate value", FieldValueDuplicate
  kInvalid,       // "Invalid value", FieldValueInvalid
  kNotSupported,  // "Unsupported value", FieldValueNotSupported
  kForbidden,     // "Forbidden", FieldValueForbidden
  kTooLong,       // "Too long", FieldValueTooLong
  kTooMany,       // "Too many", FieldValueTooMany
};

struct FieldError {
  ErrorType type = ErrorType::kInvalid;
  std::string field;
  // The Go rendering of the bad value; nullopt where Kubernetes prints none.
  std::optional<std::string> value;
  std::string detail;
  // Set for errors produced elsewhere as a StatusCause (common/labels.h): its reason and
  // message are used verbatim.
  std::optional<StatusCause> cause;

  // "Invalid value: \"Foo\": a lowercase RFC 1123 ..." (field.Error.ErrorBody()).
  std::string body() const;
  // "<field>: <body>" (field.Error.Error()).
  std::string error() const;
  // "FieldValueInvalid", ... (metav1.CauseType).
  std::string reason() const;
};

class FieldErrors {
 public:
  void invalid(const Path& p, std::string go_value, std::string detail);
  void required(const Path& p, std::string detail = {});
  void duplicate(const Path& p, std::string go_value);
  void not_found(const Path& p, std::string go_value);
  // valid values are quoted as strconv.Quote does, in the given order.
  void not_supported(const Path& p, std::string go_value, const std::vector<std::string>& valid);
  void forbidden(const Path& p, std::string detail);
  void too_long(const Path& p, int64_t max_bytes);
  void too_many(const Path& p, int64_t actual, int64_t max_items);
  void add(FieldError e) { errors_.push_back(std::move(e)); }
  // Adds causes computed by shared validators, keeping their wording.
  void add_causes(const std::vector<StatusCause>& causes);

  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  const std::vector<FieldError>& list() const { return errors_; }

  // OK when empty; otherwise Invalid with message
  //   `<Kind>[.<group>] "<name>" is invalid: <error>` (one distinct error) or
  //   `... is invalid: [<error>, <error>]` (several), and one cause per error.
  Status to_status(std::string_view kind, std::string_view group, std::string_view name) const;

 private:
  std::vector<FieldError> errors_;
};

// Go renderings of values; strings (strconv.Quote, %q) are common/strings.h's go_quote.
std::string go_int(int64_t v);  // %v of an integer
// %#v of a map[string]string read from a JSON object (null -> `map[string]string(nil)`).
std::string go_string_map(const json* m);
// %#v of a []string read from a JSON array (null -> `[]string(nil)`).
std::string go_string_slice(const json* a);
// %#v of a metav1.LabelSelector (the pointee of *LabelSelector; null -> "null").
std::string go_label_selector(const json* selector);
// The rendering of an arbitrary JSON value where Kubernetes would print a Go struct: scalars as
// Go prints them, objects and arrays as compact JSON.
std::string go_value(const json* v);

}  // namespace skiff::api::builtin
