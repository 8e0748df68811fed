// Server-side apply and managed fields (metadata.managedFields), with the semantics of
// sigs.k8s.io/structured-merge-diff and k8s.io/apimachinery/pkg/util/managedfields.
//
// A field set is written in the FieldsV1 form Kubernetes uses:
//   {"f:metadata":{"f:labels":{"f:app":{}}},
//    "f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{}}}}}
// "f:<name>" is an object member, "k:<json>" an element of a keyed list (its key fields,
// sorted), "v:<json>" an element of a set, "i:<n>" a list index; "." marks that the node
// itself is in the set when it also has children, and {} is a member without children.
//
// How lists are identified (as structured-merge-diff reads the built-in OpenAPI):
//  - FieldDef::list_type "atomic": the list is one value;
//  - list_map_keys (listType "map"), or else patch_strategy "merge" with patch_merge_key:
//    elements are keyed by those fields ("k:"). A missing key field named "protocol" takes
//    its schema default "TCP" (the one list-map key default in the built-in types);
//  - listType "set", or patch_strategy "merge" on a list of primitives: a set ("v:");
//  - anything else, and any list the schema does not describe: atomic.
// Struct members (fields declared in the TypeDef) and members of objects the schema does not
// describe are tracked by their leaves; keys of map-shaped fields (labels, annotations,
// resources.limits, ...) and list elements are members themselves.
//
// Never tracked, as in Kubernetes: apiVersion, kind, and metadata.name, namespace, uid,
// resourceVersion, generation, creationTimestamp, selfLink, clusterName, managedFields.
//
// Thread-safety: all functions are pure and may be called from any thread.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"

namespace skiff::api {

struct TypeDef;

// The fields `obj` sets, in FieldsV1 form, as an applier of `obj` would own them.
//   BadRequest: obj is not a JSON object, or nests too deeply.
//   Invalid: a keyed list has two elements with the same key, an element without a key field,
//     or an element that is not an object (".spec.containers: duplicate entries for key
//     [name=\"web\"]").
Result<nlohmann::json> fieldset_of(const nlohmann::json& obj, const TypeDef* type);

struct ApplyOptions {
  std::string manager;      // fieldManager; required
  bool force = false;       // force=true: take ownership of conflicting fields
  std::string api_version;  // the request's group/version, e.g. "apps/v1"
  std::string now_rfc3339;  // "2024-05-01T12:00:00Z"; stamped on the applier's entry
  std::string subresource;  // "" for the main resource, "status", "scale", ...
};

// Server-side apply of the configuration `applied` to `live` (null when the object does not
// exist yet: the result is then the object to create). Returns the merged object with
// metadata.managedFields updated:
//  - the applied configuration is merged into the live object: objects key by key, keyed lists
//    and sets element by element (live-only elements keep their place), everything else
//    replaced; a null in the configuration removes the field (and the applier owns it);
//  - the applier (manager, operation "Apply", subresource) owns exactly the fields of its
//    configuration; fields it owned before and omits now are removed from the object unless
//    another manager owns them;
//  - a field that this apply changes and another manager owns is a conflict: without force the
//    result is Conflict with one cause per field (reason "FieldManagerConflict", message
//    "conflict with \"<manager>\"[ using <apiVersion>]", field ".spec.replicas") and the
//    message kubectl prints, e.g.
//      Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1:
//      .spec.replicas
//    ("Apply failed with N conflicts: conflicts with ...:\n- <path>..." for several); with
//    force the applier takes those fields from their owners;
//  - setting a field to the value it already has is not a conflict: ownership is shared;
//  - the applier's entry carries apiVersion (options.api_version, else the configuration's),
//    fieldsType "FieldsV1" and, when the object changed, time = now_rfc3339 (an apply that
//    changes nothing keeps the previous time); entries left empty are dropped; entries are
//    sorted as Kubernetes sorts them (operation, time, manager, apiVersion, subresource).
// Live managedFields that cannot be decoded are discarded (Kubernetes resets them likewise).
// Fields the status/spec reset strategies exclude (e.g. status on the main resource) are the
// caller's to strip from `applied` before calling.
//   BadRequest: no manager ("fieldManager is required for apply requests"); `applied` is not
//     an object; it carries metadata.managedFields ("metadata.managedFields must be nil"); its
//     apiVersion differs from options.api_version ("Incorrect version specified in apply
//     patch. Specified patch version: v1, expected: apps/v1"); nesting too deep.
//   Invalid: a keyed list in `applied` with duplicate or missing keys (see fieldset_of).
//   Conflict: as above.
//   Internal: `live` is not a JSON object.
Result<nlohmann::json> server_side_apply(const nlohmann::json* live, const nlohmann::json& applied,
                                         const TypeDef* type, const ApplyOptions& options);

// Managed-fields bookkeeping for create, update and patch (everything but apply): returns
// `new_obj` with metadata.managedFields updated for `manager` doing `operation` ("Update", or
// "Apply") at `api_version` on `subresource`:
//  - the fields this write added or changed (every field on create, when old_obj is null) are
//    taken by the manager and removed from every other entry; fields that no longer exist are
//    dropped from every entry; entries left empty are dropped;
//  - entries are identified by (manager, operation, apiVersion, subresource), apiVersion not
//    counting for "Apply"; the manager's entry gains the changed fields and gets time = now;
//    a write that changes nothing leaves the entries as they were;
//  - the managedFields of `new_obj` are used as the starting point when they decode and are
//    not empty (so clients may edit them), [{}] resets them, and otherwise (or for a
//    subresource) those of `old_obj` are used; undecodable ones are discarded.
// An object without metadata is returned unchanged, as in Kubernetes.
//   BadRequest: new_obj is not an object; empty manager; operation neither "Update" nor
//     "Apply"; nesting too deep.
//   Internal: old_obj is not an object.
Result<nlohmann::json> update_managed_fields(const nlohmann::json* old_obj, nlohmann::json new_obj,
                                             const TypeDef* type, const std::string& manager,
                                             const std::string& operation,
                                             const std::string& api_version, const std::string& now,
                                             const std::string& subresource = "");

// update_managed_fields on `obj` itself, without copying it. On error (the same as above)
// `obj` is unchanged.
Status update_managed_fields_in_place(const nlohmann::json* old_obj, nlohmann::json& obj,
                                      const TypeDef* type, const std::string& manager,
                                      const std::string& operation,
                                      const std::string& api_version, const std::string& now,
                                      const std::string& subresource = "");

}  // namespace skiff::api
