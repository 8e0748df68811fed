// Field selectors (`?fieldSelector=`, `kubectl --field-selector`), as
// k8s.io/apimachinery/pkg/fields: a comma-separated list of `field=value`,
// `field==value` and `field!=value` terms, all of which must hold. In values,
// `\,` `\=` and `\\` stand for the literal characters; field names are taken
// verbatim (no trimming, no escapes).
//
// The API server supports only a few fields per resource (every resource:
// metadata.name and metadata.namespace); it checks requirements() against its
// list with check_supported() and then evaluates matches() with a getter for
// those fields.
//
// FieldSelector is a value type; const methods are thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace skiff {

struct FieldRequirement {
  enum class Op { kEquals, kNotEquals };  // "=" and "==" are both kEquals
  std::string field;
  Op op = Op::kEquals;
  std::string value;  // unescaped

  // "field=value" / "field!=value", with the value escaped again.
  std::string to_string() const;
};

// Returns a field's value as a string, or nullopt if the object has no such
// field; an absent field compares as "" (as in Kubernetes, `spec.nodeName=`
// selects unscheduled pods).
using FieldLookup = std::function<std::optional<std::string>(std::string_view field)>;

class FieldSelector {
 public:
  // Matches everything.
  FieldSelector() = default;

  // fields.ParseSelector. Terms are sorted by their text, empty terms
  // ("a=b,,c=d") are skipped,
  // "" selects everything. Errors are BadRequest with Kubernetes' wording:
  //   "invalid selector: 'x'; can't understand 'x'" (a term without an
  //   operator), "invalid field selector: invalid escape sequence: \q",
  //   "invalid field selector: unescaped character in value: 61" (Go prints the
  //   rune's number).
  static Result<FieldSelector> parse(std::string_view selector);

  bool matches(const FieldLookup& lookup) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<FieldRequirement>& requirements() const { return requirements_; }
  // Terms joined by ",", values escaped.
  std::string to_string() const;

  // The value demanded for `field` by an "=" term, if any (lets callers use an
  // index).
  std::optional<std::string> requires_exact_match(std::string_view field) const;

  // BadRequest `"spec.foo" is not a known field selector: only "metadata.name",
  // "metadata.namespace"` (listing `supported` in the given order) for the
  // first requirement on a field not in `supported`; OK otherwise. The API
  // server adds its own prefix, as Kubernetes does: `Unable to find "pods" that
  // match label selector "", field selector "spec.foo=x": `.
  Status check_supported(const std::vector<std::string>& supported) const;

 private:
  std::vector<FieldRequirement> requirements_;
};

// fields.EscapeValue: `\` -> `\\`, `,` -> `\,`, `=` -> `\=`.
std::string escape_field_value(std::string_view value);
// fields.UnescapeValue, with the errors described at FieldSelector::parse.
Result<std::string> unescape_field_value(std::string_view value);

}  // namespace skiff
