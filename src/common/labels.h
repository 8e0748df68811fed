// Label selectors, as k8s.io/apimachinery/pkg/labels and metav1.LabelSelector.
//
// Two sources:
//  - the string syntax of `?labelSelector=` and `kubectl -l`:
//  LabelSelector::parse
//    ("app=web,tier!=db", "env in (prod,staging)", "!canary", "replicas>2",
//    ...);
//  - a metav1.LabelSelector object in a spec (Deployment, Service,
//  NetworkPolicy, ...):
//    LabelSelector::from_json ({"matchLabels": {...}, "matchExpressions":
//    [...]}).
//
// Null versus empty, as in Kubernetes: a selector that is absent (a null JSON
// value, LabelSelector::nothing()) matches NO object, while an empty one ("" or
// {}) matches EVERY object. A Deployment with `selector: {}` selects all pods;
// a Service without a selector selects none.
//
// LabelSelector is a value type; const methods are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace skiff {

using Labels = std::map<std::string, std::string>;

// k8s.io/apimachinery/pkg/selection.Operator.
enum class LabelOperator {
  kIn,            // "in"
  kNotIn,         // "notin"
  kEquals,        // "="
  kDoubleEquals,  // "=="
  kNotEquals,     // "!="
  kExists,        // key alone
  kDoesNotExist,  // "!key"
  kGreaterThan,   // "gt", written '>'
  kLessThan,      // "lt", written '<'
};

// Returns a label's value, or nullopt when the object has no such label. The
// returned view must stay valid until the next call.
using LabelLookup = std::function<std::optional<std::string_view>(std::string_view key)>;

struct LabelRequirement {
  std::string key;
  LabelOperator op = LabelOperator::kExists;
  // For parsed selectors, sorted and without duplicates; otherwise as given.
  std::vector<std::string> values;

  // labels.Requirement.Matches: In/=/== need the key with one of the values;
  // NotIn/!= match when the key is absent or has another value; Gt/Lt need the
  // key with an integer value strictly above/below the (integer) requirement
  // value.
  bool matches(const LabelLookup& lookup) const;
  // labels.Requirement.String: "a=b", "a!=b", "a in (x,y)" (values sorted),
  // "!a", "a>1", ...
  std::string to_string() const;
};

class LabelSelector {
 public:
  // The empty selector: matches everything.
  LabelSelector() = default;

  static LabelSelector everything() { return LabelSelector(); }
  // labels.Nothing(): what an absent (null) selector means.
  static LabelSelector nothing();

  // labels.Parse. An empty or all-whitespace string is everything(). Errors are
  // BadRequest with Kubernetes' wording, e.g. "unable to parse requirement:
  // found '', expected: in, notin, =,
  // ==, !=, gt, lt" or "found ',', expected: !, identifier, or 'end of
  // string'". Requirements are sorted by key.
  static Result<LabelSelector> parse(std::string_view selector);

  // metav1.LabelSelectorAsSelector: null -> nothing(); {} -> everything();
  // otherwise matchLabels (as "=") and matchExpressions (In, NotIn, Exists,
  // DoesNotExist). Errors are BadRequest with Kubernetes' wording ("\"Foo\" is
  // not a valid label selector operator", "key: Invalid value: ...", "values:
  // Invalid value: []string{}: for 'in', 'notin' operators, values set can't be
  // empty"); wrong JSON types are BadRequest too.
  static Result<LabelSelector> from_json(const nlohmann::json& selector);

  // labels.SelectorFromSet: "=" for every entry, not validated. An empty set is
  // everything().
  static LabelSelector from_set(const Labels& set);

  bool matches(const Labels& labels) const;
  // `labels` is a metadata.labels object (string values); null or absent means
  // no labels.
  bool matches_json(const nlohmann::json& labels) const;
  bool matches_lookup(const LabelLookup& lookup) const;

  // True when the selector does not restrict anything (matches everything).
  bool empty() const { return !nothing_ && requirements_.empty(); }
  // True for nothing(): no object matches.
  bool matches_nothing() const { return nothing_; }

  // Canonical string form (requirements joined by ","); "" for everything() and
  // nothing().
  std::string to_string() const;

  const std::vector<LabelRequirement>& requirements() const { return requirements_; }

  // labels.Selector.RequiresExactMatch: the value the selector demands for
  // `key` (through "=",
  // "==" or a one-value "in"), if it demands one. Lets callers use an index.
  std::optional<std::string> requires_exact_match(std::string_view key) const;

 private:
  bool nothing_ = false;
  std::vector<LabelRequirement> requirements_;
};

// Field validation of a metav1.LabelSelector object at `field_path` (e.g.
// "spec.selector"), as apimachinery's ValidateLabelSelector (1.32): invalid
// keys or values in matchLabels, unknown operators, In/NotIn without values
// (FieldValueRequired), Exists/DoesNotExist with values (FieldValueForbidden),
// invalid keys or values in matchExpressions. A null selector is valid.
std::vector<StatusCause> validate_label_selector(const nlohmann::json& selector,
                                                 std::string_view field_path);

// Field validation of a labels map (metadata.labels, matchLabels, nodeSelector,
// ...) at `field_path`, as ValidateLabels: each key must be a qualified name,
// each value a valid label value. Non-string values are reported as invalid.
std::vector<StatusCause> validate_labels(const nlohmann::json& labels, std::string_view field_path);

}  // namespace skiff
