// metadata.managedFields entries (metav1.ManagedFieldsEntry), decoded and encoded as
// k8s.io/apimachinery/pkg/util/managedfields does.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/patch/field_set.h"

namespace skiff::api::patch_internal {

using nlohmann::json;

struct ManagedFieldsEntry {
  std::string manager;
  std::string operation;  // "Apply" or "Update"
  std::string api_version;
  std::string subresource;  // "" for the main resource
  std::string time;         // RFC 3339; "" when the entry carries none
  FieldSet fields;
};

// Entries are one per identity: (manager, operation, apiVersion, subresource), apiVersion not
// counting for "Apply" (an applier keeps one entry across versions).
bool same_identity(const ManagedFieldsEntry& a, const ManagedFieldsEntry& b);

// Decodes a managedFields list. False when it is malformed: not a list of objects, a member of
// the wrong type, a fieldsType other than "FieldsV1", invalid FieldsV1, or two entries with
// the same identity.
bool decode_managed_fields(const nlohmann::json& list, std::vector<ManagedFieldsEntry>* out);

// A list of only empty objects ([{}]): the documented way to reset managedFields.
bool is_reset_managed_fields(const nlohmann::json& list);

// Encodes entries, dropping those with no fields, sorted as Kubernetes sorts them: by
// operation, time, manager, apiVersion, subresource.
nlohmann::json encode_managed_fields(const std::vector<ManagedFieldsEntry>& entries);

// How conflict messages name a manager: "\"kubectl\"", "\"kube-controller-manager\" using
// apps/v1", "\"x\" with subresource \"status\" using v1".
std::string describe_manager(const ManagedFieldsEntry& entry);

}  // namespace skiff::api::patch_internal
