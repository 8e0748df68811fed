// CustomResourceDefinitions (apiextensions.k8s.io/v1) turned into registry entries.
//
// Each served version of a CRD becomes one ResourceDef whose TypeDef tree is converted from
// the version's openAPIV3Schema, so that strict field validation (typecheck.h), OpenAPI v3
// (openapi.h) and Table output work for custom resources as for built-in kinds.
//
// Thread-safety: pure functions.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string_view>
#include <vector>

#include "api/registry.h"
#include "common/status.h"

namespace skiff::api {

// The problems Kubernetes' CRD validation finds beyond the generic ObjectMeta rules, one cause
// per problem (field paths and wording as Kubernetes', e.g. field "spec.group", message
// `Invalid value: "example": should be a domain with at least one dot`). Checked:
// metadata.name (when set) == <spec.names.plural>.<spec.group>; spec.group a DNS subdomain
// with at least one dot; names.plural / singular / kind / listKind well formed (plural,
// singular, shortNames and categories lowercase RFC 1035 labels, kind and listKind RFC 1035
// labels once lowercased, listKind != kind), plural and kind present; scope Namespaced or
// Cluster; versions non-empty with unique, well-formed names, exactly one storage version;
// every version has schema.openAPIV3Schema whose root has type object; nodes of the schema are
// structural (a type unless x-kubernetes-int-or-string or x-kubernetes-preserve-unknown-fields;
// arrays with items; properties and additionalProperties not both; known type names);
// additionalPrinterColumns have a name, a supported type and format and a jsonPath; a scale
// subresource's replica paths lie under .spec and .status; conversion.strategy (when set) is
// None or Webhook. With `old` (an update), spec.scope and spec.group may not change.
// The API server's ObjectMeta validation runs in front of this one, so an empty name is not
// reported here.
std::vector<StatusCause> crd_field_errors(const nlohmann::json& crd,
                                          const nlohmann::json* old = nullptr);

// Validates a CRD on its own, as resource_defs_from_crd needs: metadata.name must be set, then
// crd_field_errors(crd). Returns OK, or Invalid with those causes and the message
//   CustomResourceDefinition.apiextensions.k8s.io "<name>" is invalid: <cause>[, <cause>...]
Status validate_crd(const nlohmann::json& crd);

// The ResourceDefs of a CRD, one per served version (in spec.versions order), after
// validate_crd (whose error is returned as is). Each has:
//   - group, version, kind, list_kind (default <kind>List), resource = names.plural,
//     singular (default lowercase kind), short_names, categories, scope; crd = true;
//   - verbs: create, delete, deletecollection, get, list, patch, update, watch;
//   - subresources "status" (same kind; has_status_subresource) and "scale" (autoscaling/v1
//     Scale) when the version declares them;
//   - type: the schema converted to TypeDefs, owned by owned_schema. The root is named
//     "<reversed group>.<version>.<Kind>" (com.example.stable.v1.CronTab), nested objects
//     "<parent>.<field>". properties → fields (required → optional = false), type mapping
//     (string, integer → kInt64 (kInt32 with format int32), number → kDouble, boolean,
//     object, array → Shape::kList, additionalProperties → Shape::kMap), enum → enum_values,
//     x-kubernetes-int-or-string → kIntOrString, x-kubernetes-preserve-unknown-fields →
//     preserve_unknown_fields (kAny when the node has no type), x-kubernetes-embedded-resource
//     adds apiVersion/kind/metadata, x-kubernetes-list-type / list-map-keys copied. The root
//     always has apiVersion, kind and metadata; metadata is the built-in ObjectMeta when the
//     built-in schema is linked in, otherwise a free-form object;
//   - columns: Name, then the version's additionalPrinterColumns, or Age when it declares
//     none (as Kubernetes serves them); row() evaluates each column's jsonPath (see
//     find_json_path) and formats the cell by the column type (integer, number, boolean,
//     string, date → "5m" style age relative to `now`); cells whose path finds nothing are
//     null.
Result<std::vector<std::shared_ptr<const ResourceDef>>> resource_defs_from_crd(
    const nlohmann::json& crd);

// Evaluates the JSONPath subset used by printer columns against `obj`: a chain of ".name",
// "['name']" / "[\"name\"]" (names with dots), "[N]" (negative counts from the end), "[*]"
// (the first element) and "[?(@.a.b=='v')]" (the first element whose field equals the string,
// number or boolean). Surrounding "{...}" is allowed. Returns the value, or null when the path
// finds nothing or is outside the subset.
const nlohmann::json* find_json_path(const nlohmann::json& obj, std::string_view path);

}  // namespace skiff::api
