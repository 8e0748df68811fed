// Walks over objects that compute, compare and apply field sets: the structured-merge-diff
// operations server-side apply and managed fields are built from. All recursion follows the
// objects, whose depth the public entry points check first.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "api/patch/field_set.h"
#include "api/patch/schema_ref.h"

namespace skiff::api::patch_internal {

using nlohmann::json;

// The fields `v` sets, as its applier owns them (ToFieldSet): leaves, list elements and
// map-field keys are members; struct members are tracked through their leaves. With `strict`,
// a keyed list with duplicate or missing keys is an error: false, with `error` set to
// "<path>: <problem>" and `error_path` to the list's path.
bool collect_fields(const json& v, const NodeRef& ref, bool strict, FieldSet* out,
                    std::string* error, std::string* error_path);

// The fields of `now` that are new or different from `before` (null: everything is new),
// with the membership an Update gives them: like collect_fields, plus the node of every added
// map field and keyed list.
void changed_fields(const json* before, const json& now, const NodeRef& ref, FieldSet* out);

// Drops from `set` every path that does not exist in `v`.
void retain_existing(FieldSet* set, const json& v, const NodeRef& ref);

// Merges the applied configuration `config` into `live` (in place): objects key by key,
// keyed lists element by element in structured-merge-diff's order, anything else replaced.
// Nulls in `config` are copied (strip_null_fields removes them afterwards).
void apply_merge(json* live, const json& config, const NodeRef& ref);

// Removes from `v` what its applier stopped applying: every path in `last` (the applier's
// previous set) that no entry in `owned` still claims (structured-merge-diff prune).
void prune_unowned(json* v, const FieldSet& last, const FieldSet* owned, const NodeRef& ref);

// Removes from `merged` the members `config` set to null.
void strip_null_fields(json* merged, const json& config, const NodeRef& ref);

// Drops the paths Kubernetes never tracks: apiVersion, kind, and metadata's name, namespace,
// uid, resourceVersion, generation, creationTimestamp, selfLink, clusterName, managedFields.
void strip_untracked_fields(FieldSet* set);

}  // namespace skiff::api::patch_internal
