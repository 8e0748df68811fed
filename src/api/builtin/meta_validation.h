// Validation shared by every kind: ObjectMeta on create and update, label and annotation maps,
// label selectors (validation, matching and printing), and the small field checks Kubernetes
// reuses everywhere (non-negative numbers, immutable fields, DNS names, port numbers and names).
//
// Private to src/api/builtin. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/builtin/field_errors.h"
#include "api/builtin/json_util.h"
#include "common/labels.h"

namespace skiff::api::builtin {

// Which rule metadata.name (and generateName) must satisfy.
enum class NameRule {
  kDNS1123Subdomain,  // most kinds (apimachineryvalidation.NameIsDNSSubdomain)
  kDNS1123Label,      // Namespace (NameIsDNSLabel)
  kDNS1035Label,      // Service (NameIsDNS1035Label)
  kPathSegment,       // RBAC kinds (path.ValidatePathSegmentName)
};

// The problems with a name under `rule`; with prefix=true the value is a generateName, whose
// trailing dash is tolerated as upstream does.
std::vector<std::string> name_problems(NameRule rule, std::string_view name, bool prefix);

// ValidateObjectMeta for a create: name or generateName, namespace presence, generation,
// labels, annotations, ownerReferences and finalizers, under metadata.*.
void validate_object_meta(const json& obj, bool namespaced, NameRule rule, FieldErrors& errs);
// ValidateObjectMetaUpdate: name, namespace, uid, creationTimestamp and deletion fields may not
// change (a uid or creationTimestamp missing from `obj` counts as unchanged, as the REST layer
// carries them over), generation may not decrease, and labels/annotations/ownerReferences
// must be valid.
void validate_object_meta_update(const json& obj, const json& old, FieldErrors& errs);

// unversionedvalidation.ValidateLabels (through common/labels.h): keys are qualified names,
// values label values; every error is reported at `p` itself, keys in sorted order.
void validate_labels(const json* labels, const Path& p, FieldErrors& errs);
// ValidateAnnotations: keys are qualified names (case-insensitive), total size <= 256 KiB.
void validate_annotations(const json* annotations, const Path& p, FieldErrors& errs);
void validate_qualified_name(std::string_view value, const Path& p, FieldErrors& errs);
void validate_dns1123_label(std::string_view value, const Path& p, FieldErrors& errs);
void validate_dns1123_subdomain(std::string_view value, const Path& p, FieldErrors& errs);
// "must be greater than or equal to 0".
void validate_nonnegative(int64_t value, const Path& p, FieldErrors& errs);
// ValidateImmutableField: Invalid(p, go_value, "field is immutable") when the JSON values
// differ (absent and null are equal).
void validate_immutable(const json* new_value, const json* old_value, const Path& p,
                        const std::string& go_value, FieldErrors& errs);
// Semantic equality of two optional JSON values (absent == null).
bool json_equal(const json* a, const json* b);

// ValidatePortNumOrName for an intstr value at `p`.
void validate_port_num_or_name(const json* port, const Path& p, FieldErrors& errs);
// validation.IsValidIP ("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)").
bool is_ip(std::string_view s);

// unversionedvalidation.ValidateLabelSelector (through common/labels.h).
void validate_label_selector(const json* selector, const Path& p, FieldErrors& errs);

// metav1.LabelSelectorAsSelector of a spec's selector: a null selector selects nothing, an
// empty one everything; nullopt when the selector is invalid.
std::optional<LabelSelector> selector_of(const json* selector);
// metav1.FormatLabelSelector: "<none>" when empty, "<error>" when invalid.
std::string format_label_selector(const json* selector);
// labels.FormatLabels: "a=b,c=d" sorted, "<none>" when empty.
std::string format_labels(const json* labels);

}  // namespace skiff::api::builtin
