// Field validation: checks a decoded JSON object against its TypeDef, as Kubernetes' typed
// decoding does (sigs.k8s.io/json into Go structs, or structural pruning for CRDs), with the
// fieldValidation query parameter deciding what happens to unknown fields.
//
// Thread-safety: pure functions; TypeDefs are immutable.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/schema.h"
#include "common/status.h"

namespace skiff::api {

// The fieldValidation query parameter (metav1.FieldValidation*).
enum class FieldValidation { kIgnore, kWarn, kStrict };

// Parses the query parameter value: "Ignore", "Warn", "Strict" (exact case, as Kubernetes
// requires); "" is Kubernetes' default, Warn. Anything else is Invalid with one cause on field
// "fieldValidation" and the message
//   fieldValidation: Unsupported value: "x": supported values: "", "Ignore", "Strict", "Warn"
// (Kubernetes prefixes it with `CreateOptions.meta.k8s.io "" is invalid: `, or the
// UpdateOptions / PatchOptions equivalent; callers add that).
Result<FieldValidation> parse_field_validation(std::string_view value);

// Walks `obj` against `type` and normalizes it as decoding into the typed struct would.
//
// `obj` is a full object (create, update, apply result), not a patch: null members mean "zero"
// here, not "delete". At the top level apiVersion and kind are accepted as strings even when
// `type` does not declare them.
//
// Always:
//   - A value of the wrong JSON type is an error, whatever the mode: BadRequest with the
//     message Go's decoder gives, e.g.
//       json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of
//       type int32
//     Quantities, times, durations and base64 bytes that do not parse give the Go library's
//     message (e.g. "illegal base64 data at input byte 4"). Only the first such error is
//     reported. Type errors take precedence over unknown fields.
//   - A member whose value is null is removed (Go decodes null as the zero value, which is
//     then omitted); null list elements and map values become the zero value of their kind.
//     Nulls inside kAny / kRawExtension values and preserved unknown fields are kept.
//   - Nesting deeper than kMaxNestingDepth (common/json.h) is BadRequest.
// Unknown fields (not declared by the TypeDef or its inline fields, and not below a TypeDef
// with preserve_unknown_fields), named by their path from the root as Kubernetes does
// ("spec.replica", "spec.template.spec.containers[0].imagePullPolicyy", map keys as ".key"):
//   - kStrict: BadRequest `strict decoding error: unknown field "spec.replica", unknown field
//     "spec.foo"` listing every unknown field (JSON object member order, i.e. by key).
//   - kWarn: each is appended to *warnings (if non-null) as `unknown field "spec.replica"`
//     and removed from obj.
//   - kIgnore: removed from obj silently.
// On error, obj may have been partly normalized; callers discard it.
//
// Kubernetes prefixes decoding errors with the kind; callers that answer a request wrap the
// returned status with decode_error() below, which gives
//   Deployment in version "v1" cannot be handled as a Deployment: <message>
Status check_fields(nlohmann::json& obj, const TypeDef& type, FieldValidation mode,
                    std::vector<std::string>* warnings);

// `status` with its message prefixed as Kubernetes' create/update handlers do:
//   `<kind> in version "<version>" cannot be handled as a <kind>: <message>`.
// OK statuses are returned unchanged.
Status decode_error(Status status, std::string_view kind, std::string_view version);

}  // namespace skiff::api
