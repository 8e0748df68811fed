// Patches: the three ways a client changes an existing object with PATCH, with Kubernetes
// semantics.
//
//   application/merge-patch+json           apply_merge_patch            (RFC 7386)
//   application/json-patch+json            apply_json_patch             (RFC 6902)
//   application/strategic-merge-patch+json apply_strategic_merge_patch  (Kubernetes SMP)
//
// Server-side apply (application/apply-patch+yaml) and managed fields live in apply.h.
//
// Every function takes the current object and the decoded patch body and returns the patched
// object, or a Status; none throws, and none crashes on any input. Inputs nesting deeper than
// kMaxPatchDepth are refused with BadRequest (the request parser bounds depth far below that;
// the limit keeps the recursive parts safe for callers that build JSON themselves).
//
// Thread-safety: all functions are pure and may be called from any thread.
#pragma once

#include <cstddef>
#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace skiff::api {

struct TypeDef;

// Deepest nesting of objects/arrays accepted in a target object or a patch.
inline constexpr int kMaxPatchDepth = 512;
// Most operations one JSON patch may carry, as in the Kubernetes API server.
inline constexpr size_t kMaxJsonPatchOperations = 10000;

// RFC 7386 JSON merge patch: objects merge key by key, null removes a key, anything else
// (arrays included) replaces. As in Kubernetes the patch itself must be a JSON object.
//   BadRequest: the patch is not an object, or nests too deeply.
Result<nlohmann::json> apply_merge_patch(const nlohmann::json& target, const nlohmann::json& patch);

// RFC 6902 JSON patch: an array of add/remove/replace/move/copy/test operations applied in
// order, atomically (on any error the result is discarded).
//   BadRequest: the patch is not a well-formed operation list (not an array, an operation
//     without "op", an unknown op, a missing or non-string "path"/"from", a path that is not
//     a JSON pointer, a missing "value").
//   TooLarge: more than kMaxJsonPatchOperations operations ("Request entity too large: The
//     allowed maximum operations in a JSON patch is 10000, got N"), as Kubernetes answers.
//   Invalid (422, as Kubernetes answers): an operation does not apply to the document: a
//     failed "test" ("testing value /spec/replicas failed: test failed ..."), a path that
//     does not exist, an array index out of range, a move into its own child.
// As in Kubernetes (evanphx/json-patch), negative array indices count from the end and a
// "test" of null against a missing member succeeds.
Result<nlohmann::json> apply_json_patch(const nlohmann::json& target, const nlohmann::json& patch);

// Kubernetes strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch), driven by
// `type` (the object's TypeDef; null when unknown):
//  - objects merge key by key; null removes a key; fields without a patch strategy, and
//    fields with strategy "replace", are replaced;
//  - lists whose field has patchStrategy "merge" merge: lists of objects by patch_merge_key
//    (elements with a matching key merge recursively, others are added), lists of primitives
//    as ordered sets (union); element order follows upstream: patch items in patch order,
//    server-only items keep their relative order, interleaved by their live positions;
//  - directives: "$patch": "replace" | "delete" | "merge" in an object ("delete" leaves an
//    empty object, as upstream), and in an element of a merging list ("delete" removes the
//    elements with that merge key, "replace" makes the list exactly the patch's other
//    elements, "merge" merges the element as usual); "$retainKeys" (keys not listed are
//    cleared); "$setElementOrder/<field>" (the relative order of the listed elements wins,
//    then it is stripped); "$deleteFromPrimitiveList/<field>" (those values are removed);
//  - where the schema does not describe a field (type == null, or a field the TypeDef does
//    not know), that subtree follows merge-patch rules (lists replaced), with "$patch",
//    "$retainKeys" and the parallel-list directives still honoured and stripped.
// Inline (embedded) fields are resolved through TypeDef::field().
//   BadRequest: the patch is not an object; a directive with a bad value (an unknown $patch
//     type, a $retainKeys / $setElementOrder / $deleteFromPrimitiveList that is not a list,
//     a patch key missing from $retainKeys); a $setElementOrder whose order contradicts the
//     patch list; an element of a merging list that is not an object or lacks the merge key;
//     a value whose JSON type contradicts the schema (a list where the schema has an object,
//     an object or scalar where it has a list); nesting too deep.
Result<nlohmann::json> apply_strategic_merge_patch(const nlohmann::json& target,
                                                   const nlohmann::json& patch,
                                                   const TypeDef* type);

}  // namespace skiff::api
