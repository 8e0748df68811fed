// Server-side apply and managed fields: structured-merge-diff's Updater.Apply / Updater.Update
// with the apiserver's managed-fields bookkeeping around them.
#include "api/patch/apply.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>
#include <vector>

#include "api/patch/field_set.h"
#include "api/patch/managed_fields.h"
#include "api/patch/object_fields.h"
#include "api/patch/patch_util.h"
#include "api/patch/schema_ref.h"

namespace skiff::api {
namespace {

using patch_internal::FieldSet;
using patch_internal::json;
using patch_internal::ManagedFieldsEntry;
using patch_internal::NodeRef;

// metadata.managedFields of `obj`, or null.
const json* managed_fields_of(const json& obj) {
  auto metadata = obj.find("metadata");
  if (metadata == obj.end() || !metadata->is_object()) return nullptr;
  auto fields = metadata->find("managedFields");
  return fields == metadata->end() ? nullptr : &*fields;
}

void erase_managed_fields(json& obj) {
  auto metadata = obj.find("metadata");
  if (metadata != obj.end() && metadata->is_object()) metadata->erase("managedFields");
}

// Entries decoded leniently: undecodable managedFields count as none, as Kubernetes resets
// them.
std::vector<ManagedFieldsEntry> decode_or_empty(const json* list) {
  std::vector<ManagedFieldsEntry> entries;
  if (list == nullptr || !patch_internal::decode_managed_fields(*list, &entries)) entries.clear();
  for (ManagedFieldsEntry& e : entries) patch_internal::strip_untracked_fields(&e.fields);
  return entries;
}

// Writes the entries into obj.metadata.managedFields (removing the member when none is left).
// An object whose metadata is not an object is left alone.
void store_managed_fields(json& obj, const std::vector<ManagedFieldsEntry>& entries) {
  json encoded = patch_internal::encode_managed_fields(entries);
  auto metadata = obj.find("metadata");
  if (metadata == obj.end()) {
    if (encoded.empty()) return;
    obj["metadata"] = json::object();
    metadata = obj.find("metadata");
  }
  if (!metadata->is_object()) return;
  if (encoded.empty()) {
    metadata->erase("managedFields");
  } else {
    (*metadata)["managedFields"] = std::move(encoded);
  }
}

std::vector<ManagedFieldsEntry>::iterator find_entry(std::vector<ManagedFieldsEntry>& entries,
                                                     const ManagedFieldsEntry& identity) {
  return std::find_if(entries.begin(), entries.end(), [&](const ManagedFieldsEntry& e) {
    return patch_internal::same_identity(e, identity);
  });
}

void drop_empty(std::vector<ManagedFieldsEntry>& entries) {
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const ManagedFieldsEntry& e) { return e.fields.empty(); }),
                entries.end());
}

struct Conflict {
  size_t owner;  // index into the entries
  FieldSet fields;
};

// The Conflict status Kubernetes answers (managedfields/internal/conflict.go).
Status conflict_status(const std::vector<Conflict>& conflicts,
                       const std::vector<ManagedFieldsEntry>& entries) {
  std::vector<const Conflict*> sorted;
  for (const Conflict& c : conflicts) sorted.push_back(&c);
  std::stable_sort(sorted.begin(), sorted.end(), [&](const Conflict* a, const Conflict* b) {
    const ManagedFieldsEntry& x = entries[a->owner];
    const ManagedFieldsEntry& y = entries[b->owner];
    return std::tie(x.manager, x.operation, x.api_version, x.subresource) <
           std::tie(y.manager, y.operation, y.api_version, y.subresource);
  });
  size_t total = 0;
  std::vector<std::pair<std::string, std::vector<std::string>>> by_manager;
  for (const Conflict* c : sorted) {
    by_manager.emplace_back(patch_internal::describe_manager(entries[c->owner]),
                            c->fields.member_paths());
    total += by_manager.back().second.size();
  }
  std::string message;
  if (total == 1) {
    message = "Apply failed with 1 conflict: conflict with " + by_manager[0].first + ": " +
              by_manager[0].second[0];
  } else {
    message = "Apply failed with " + std::to_string(total) + " conflicts: ";
    bool first = true;
    for (const auto& [manager, paths] : by_manager) {
      if (!first) message += "\n";
      first = false;
      message += "conflicts with " + manager + ":";
      for (const std::string& path : paths) message += "\n- " + path;
    }
  }
  Status status(StatusCode::kConflict, std::move(message));
  for (const auto& [manager, paths] : by_manager) {
    for (const std::string& path : paths) {
      status.add_cause(StatusCause{"FieldManagerConflict", "conflict with " + manager, path});
    }
  }
  return status;
}

// `path` is in structured-merge-diff notation (".spec.containers"); causes name fields the way
// validation errors do ("spec.containers").
Status invalid_fields(const std::string& error, const std::string& path) {
  Status status = Status::Invalid(error);
  status.add_cause(StatusCause{"FieldValueInvalid", error,
                               path.empty() || path[0] != '.' ? path : path.substr(1)});
  return status;
}

}  // namespace

Result<json> fieldset_of(const json& obj, const TypeDef* type) {
  if (!obj.is_object()) {
    return Status::BadRequest(std::string("object must be a JSON object, got ") +
                              patch_internal::type_name(obj));
  }
  if (Status s = patch_internal::check_depth(obj, "object"); !s.ok()) return s;
  FieldSet set;
  std::string error;
  std::string error_path;
  if (!patch_internal::collect_fields(obj, patch_internal::root_ref(type), /*strict=*/true, &set,
                                      &error, &error_path)) {
    return invalid_fields(error, error_path);
  }
  patch_internal::strip_untracked_fields(&set);
  return set.to_fields_v1();
}

Result<json> server_side_apply(const json* live, const json& applied, const TypeDef* type,
                               const ApplyOptions& options) {
  if (options.manager.empty()) {
    return Status::BadRequest("fieldManager is required for apply requests");
  }
  if (!applied.is_object()) {
    return Status::BadRequest(std::string("apply patch must be a JSON object, got ") +
                              patch_internal::type_name(applied));
  }
  if (live != nullptr && !live->is_object()) {
    return Status::Internal("live object is not a JSON object");
  }
  if (Status s = patch_internal::check_depth(applied, "apply patch"); !s.ok()) return s;
  if (live != nullptr) {
    if (Status s = patch_internal::check_depth(*live, "object"); !s.ok()) return s;
  }
  if (auto metadata = applied.find("metadata"); metadata != applied.end()) {
    if (!metadata->is_object() && !metadata->is_null()) {
      return Status::BadRequest("metadata must be an object");
    }
    if (metadata->is_object()) {
      auto fields = metadata->find("managedFields");
      if (fields != metadata->end() && !fields->is_null()) {
        return Status::BadRequest("metadata.managedFields must be nil");
      }
    }
  }
  std::string config_version;
  if (auto v = applied.find("apiVersion"); v != applied.end() && v->is_string()) {
    config_version = v->get_ref<const std::string&>();
  }
  if (!options.api_version.empty() && !config_version.empty() &&
      config_version != options.api_version) {
    return Status::BadRequest(
        "Incorrect version specified in apply patch. Specified patch version: " + config_version +
        ", expected: " + options.api_version);
  }

  const NodeRef root = patch_internal::root_ref(type);
  FieldSet applier_fields;
  std::string error;
  std::string error_path;
  if (!patch_internal::collect_fields(applied, root, /*strict=*/true, &applier_fields, &error,
                                      &error_path)) {
    return invalid_fields(error, error_path);
  }
  patch_internal::strip_untracked_fields(&applier_fields);

  json before = live != nullptr ? *live : json::object();
  std::vector<ManagedFieldsEntry> entries =
      decode_or_empty(live != nullptr ? managed_fields_of(*live) : nullptr);
  erase_managed_fields(before);

  ManagedFieldsEntry identity;
  identity.manager = options.manager;
  identity.operation = "Apply";
  identity.subresource = options.subresource;
  auto existing = find_entry(entries, identity);
  FieldSet last_applied;
  std::string previous_time;
  if (existing == entries.end()) {
    entries.push_back(identity);
    existing = std::prev(entries.end());
  } else {
    last_applied = std::move(existing->fields);
    previous_time = existing->time;
  }
  const size_t applier = static_cast<size_t>(existing - entries.begin());
  entries[applier].fields = std::move(applier_fields);
  entries[applier].api_version = options.api_version.empty() ? config_version : options.api_version;

  json merged = before;
  patch_internal::apply_merge(&merged, applied, root);
  if (!last_applied.empty()) {
    FieldSet owned;
    for (const ManagedFieldsEntry& e : entries) owned.merge_from(e.fields);
    patch_internal::prune_unowned(&merged, last_applied, &owned, root);
  }

  // Conflicts: fields this apply changes that someone else owns.
  FieldSet changed;
  patch_internal::changed_fields(&before, merged, root, &changed);
  patch_internal::strip_untracked_fields(&changed);
  std::vector<Conflict> conflicts;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i == applier) continue;
    FieldSet overlap = entries[i].fields.intersect(changed);
    if (!overlap.empty()) conflicts.push_back(Conflict{i, std::move(overlap)});
  }
  if (!conflicts.empty() && !options.force) return conflict_status(conflicts, entries);
  for (const Conflict& c : conflicts) entries[c.owner].fields.subtract(c.fields);
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i != applier) patch_internal::retain_existing(&entries[i].fields, merged, root);
  }

  patch_internal::strip_null_fields(&merged, applied, root);
  entries[applier].time = merged != before ? options.now_rfc3339 : previous_time;
  drop_empty(entries);
  store_managed_fields(merged, entries);
  return merged;
}

Result<json> update_managed_fields(const json* old_obj, json new_obj, const TypeDef* type,
                                   const std::string& manager, const std::string& operation,
                                   const std::string& api_version, const std::string& now,
                                   const std::string& subresource) {
  Status s = update_managed_fields_in_place(old_obj, new_obj, type, manager, operation,
                                            api_version, now, subresource);
  if (!s.ok()) return s;
  return new_obj;
}

Status update_managed_fields_in_place(const json* old_obj, json& new_obj, const TypeDef* type,
                                      const std::string& manager, const std::string& operation,
                                      const std::string& api_version, const std::string& now,
                                      const std::string& subresource) {
  if (!new_obj.is_object()) {
    return Status::BadRequest(std::string("object must be a JSON object, got ") +
                              patch_internal::type_name(new_obj));
  }
  if (old_obj != nullptr && !old_obj->is_object()) {
    return Status::Internal("previous object is not a JSON object");
  }
  if (manager.empty()) return Status::BadRequest("a field manager is required");
  if (operation != "Update" && operation != "Apply") {
    return Status::BadRequest("managed fields operation must be \"Update\" or \"Apply\", got \"" +
                              operation + "\"");
  }
  if (Status s = patch_internal::check_depth(new_obj, "object"); !s.ok()) return s;
  if (old_obj != nullptr) {
    if (Status s = patch_internal::check_depth(*old_obj, "object"); !s.ok()) return s;
  }
  auto metadata = new_obj.find("metadata");
  if (metadata == new_obj.end() || !metadata->is_object()) return Status::Ok();

  // The request's own managedFields win when they are usable, so clients can edit them; a
  // subresource write cannot change them.
  std::vector<ManagedFieldsEntry> entries;
  const json* requested = managed_fields_of(new_obj);
  bool decided = false;
  if (subresource.empty() && requested != nullptr && requested->is_array() && !requested->empty()) {
    if (patch_internal::is_reset_managed_fields(*requested)) {
      decided = true;
    } else {
      entries = decode_or_empty(requested);
      decided = !entries.empty();
    }
  }
  if (!decided)
    entries = decode_or_empty(old_obj != nullptr ? managed_fields_of(*old_obj) : nullptr);

  erase_managed_fields(new_obj);
  json before = old_obj != nullptr ? *old_obj : json::object();
  erase_managed_fields(before);

  const NodeRef root = patch_internal::root_ref(type);
  FieldSet changed;
  patch_internal::changed_fields(&before, new_obj, root, &changed);
  patch_internal::strip_untracked_fields(&changed);

  for (ManagedFieldsEntry& e : entries) {
    e.fields.subtract(changed);
    patch_internal::retain_existing(&e.fields, new_obj, root);
  }
  if (!changed.empty()) {
    ManagedFieldsEntry identity;
    identity.manager = manager;
    identity.operation = operation;
    identity.api_version = api_version;
    identity.subresource = subresource;
    auto entry = find_entry(entries, identity);
    if (entry == entries.end()) {
      entries.push_back(identity);
      entry = std::prev(entries.end());
    }
    if (entry->fields.empty()) {
      entry->fields = std::move(changed);  // a new entry: no copy
    } else {
      entry->fields.merge_from(changed);
    }
    entry->api_version = api_version;
    entry->time = now;
  }
  drop_empty(entries);
  store_managed_fields(new_obj, entries);
  return Status::Ok();
}

}  // namespace skiff::api
