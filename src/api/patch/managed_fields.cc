#include "api/patch/managed_fields.h"

#include <algorithm>
#include <tuple>

#include "api/patch/patch_util.h"
#include "common/json.h"

namespace skiff::api::patch_internal {
namespace {

bool read_string(const json& entry, const char* name, std::string* out) {
  auto it = entry.find(name);
  if (it == entry.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  *out = it->get_ref<const std::string&>();
  return true;
}

}  // namespace

bool same_identity(const ManagedFieldsEntry& a, const ManagedFieldsEntry& b) {
  if (a.manager != b.manager || a.operation != b.operation || a.subresource != b.subresource) {
    return false;
  }
  return a.operation == "Apply" || a.api_version == b.api_version;
}

bool decode_managed_fields(const json& list, std::vector<ManagedFieldsEntry>* out) {
  out->clear();
  if (list.is_null()) return true;
  if (!list.is_array()) return false;
  for (const json& raw : list) {
    if (!raw.is_object()) return false;
    ManagedFieldsEntry entry;
    std::string fields_type;
    if (!read_string(raw, "manager", &entry.manager) ||
        !read_string(raw, "operation", &entry.operation) ||
        !read_string(raw, "apiVersion", &entry.api_version) ||
        !read_string(raw, "subresource", &entry.subresource) ||
        !read_string(raw, "time", &entry.time) || !read_string(raw, "fieldsType", &fields_type)) {
      return false;
    }
    if (fields_type != "FieldsV1") return false;
    auto fields = raw.find("fieldsV1");
    if (fields != raw.end() && !fields->is_null()) {
      std::string error;
      if (!FieldSet::from_fields_v1(*fields, &entry.fields, &error)) return false;
    }
    for (const ManagedFieldsEntry& seen : *out) {
      if (same_identity(seen, entry)) return false;
    }
    out->push_back(std::move(entry));
  }
  return true;
}

bool is_reset_managed_fields(const json& list) {
  if (!list.is_array() || list.empty()) return false;
  for (const json& entry : list) {
    if (!entry.is_object() || !entry.empty()) return false;
  }
  return true;
}

json encode_managed_fields(const std::vector<ManagedFieldsEntry>& entries) {
  std::vector<const ManagedFieldsEntry*> kept;
  for (const ManagedFieldsEntry& e : entries) {
    if (!e.fields.empty()) kept.push_back(&e);
  }
  // Times are RFC 3339 in UTC with seconds precision, so they order as strings; an entry
  // without a time sorts first, as Kubernetes' zero time does.
  std::stable_sort(kept.begin(), kept.end(), [](const auto* a, const auto* b) {
    return std::tie(a->operation, a->time, a->manager, a->api_version, a->subresource) <
           std::tie(b->operation, b->time, b->manager, b->api_version, b->subresource);
  });
  json out = json::array();
  for (const ManagedFieldsEntry* e : kept) {
    json entry = json::object();
    entry["manager"] = e->manager;
    entry["operation"] = e->operation;
    entry["apiVersion"] = e->api_version;
    if (!e->time.empty()) entry["time"] = e->time;
    entry["fieldsType"] = "FieldsV1";
    entry["fieldsV1"] = e->fields.to_fields_v1();
    if (!e->subresource.empty()) entry["subresource"] = e->subresource;
    out.push_back(std::move(entry));
  }
  return out;
}

std::string describe_manager(const ManagedFieldsEntry& entry) {
  std::string out = to_json(json(entry.manager));
  if (!entry.subresource.empty()) out += " with subresource " + to_json(json(entry.subresource));
  if (entry.operation == "Update") out += " using " + entry.api_version;
  return out;
}

}  // namespace skiff::api::patch_internal
