#include "controllers/common/controller_ref.h"

#include <utility>

#include "common/json.h"
#include "controllers/common/object_meta.h"

namespace skiff::controllers::common {

json OwnerReference::to_json() const {
  json ref = {{"apiVersion", api_version}, {"kind", kind}, {"name", name}, {"uid", uid}};
  if (controller) ref["controller"] = true;
  if (block_owner_deletion) ref["blockOwnerDeletion"] = true;
  return ref;
}

std::optional<OwnerReference> OwnerReference::from_json(const json& ref) {
  if (!ref.is_object()) return std::nullopt;
  OwnerReference out;
  out.uid = string_at(ref, {"uid"});
  if (out.uid.empty()) return std::nullopt;
  out.api_version = string_at(ref, {"apiVersion"});
  out.kind = string_at(ref, {"kind"});
  out.name = string_at(ref, {"name"});
  out.controller = bool_at(ref, {"controller"});
  out.block_owner_deletion = bool_at(ref, {"blockOwnerDeletion"});
  return out;
}

std::optional<OwnerReference> controller_of(const json& obj) {
  const json* refs = find_path(obj, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return std::nullopt;
  for (const json& r : *refs) {
    if (bool_at(r, {"controller"})) return OwnerReference::from_json(r);
  }
  return std::nullopt;
}

bool is_controlled_by(const json& obj, std::string_view owner_uid) {
  auto ref = controller_of(obj);
  return ref && ref->uid == owner_uid;
}

OwnerReference new_controller_ref(const json& owner, std::string api_version, std::string kind) {
  OwnerReference ref;
  ref.api_version = std::move(api_version);
  ref.kind = std::move(kind);
  ref.name = name_of(owner);
  ref.uid = uid_of(owner);
  ref.controller = true;
  ref.block_owner_deletion = true;
  return ref;
}

std::string adopt_patch(const OwnerReference& ref, std::string_view object_uid) {
  json patch = {
      {"metadata", {{"ownerReferences", json::array({ref.to_json()})}, {"uid", object_uid}}}};
  return to_json(patch);
}

std::string release_patch(std::string_view owner_uid, std::string_view object_uid) {
  json patch = {{"metadata",
                 {{"ownerReferences", json::array({{{"$patch", "delete"}, {"uid", owner_uid}}})},
                  {"uid", object_uid}}}};
  return to_json(patch);
}

Status recheck_owner(client::Client& client, const client::ResourceRef& r, const std::string& kind,
                     const std::string& name, const std::string& uid) {
  auto fresh = client.get(r, name);
  if (!fresh.ok()) return fresh.status();
  const json& obj = **fresh;
  std::string fresh_uid = uid_of(obj);
  if (fresh_uid != uid) {
    return Status::Conflict("original " + kind + " " + r.ns + "/" + name + " is gone: got uid " +
                            fresh_uid + ", wanted " + uid);
  }
  if (being_deleted(obj)) {
    return Status::Conflict(r.ns + "/" + name + " has just been deleted at " +
                            string_at(obj, {"metadata", "deletionTimestamp"}));
  }
  return Status::Ok();
}

ControllerRefManager::ControllerRefManager(client::Client& client, const json& controller,
                                           OwnerReference ref, LabelSelector selector,
                                           std::function<Status()> can_adopt)
    : client_(client),
      controller_(controller),
      ref_(std::move(ref)),
      selector_(std::move(selector)),
      can_adopt_fn_(std::move(can_adopt)) {}

Status ControllerRefManager::can_adopt() {
  if (!can_adopt_result_) {
    can_adopt_result_ = can_adopt_fn_ ? can_adopt_fn_() : Status::Ok();
  }
  return *can_adopt_result_;
}

std::vector<client::ObjectPtr> ControllerRefManager::claim(
    const client::ResourceRef& r, const std::vector<client::ObjectPtr>& objects, Status* error) {
  std::vector<client::ObjectPtr> claimed;
  std::vector<Status> errors;
  const bool controller_deleting = being_deleted(controller_);
  const std::string controller_ns = namespace_of(controller_);
  for (const client::ObjectPtr& obj : objects) {
    if (!obj) continue;
    const json& o = *obj;
    const json* labels = find_path(o, {"metadata", "labels"});
    bool matches = selector_.matches_json(labels != nullptr ? *labels : json());
    auto owner = controller_of(o);
    if (owner) {
      if (owner->uid != ref_.uid) continue;  // owned by someone else
      if (matches) {
        // Claiming what we already own needs no write, so it is fine while being deleted.
        claimed.push_back(obj);
        continue;
      }
      if (controller_deleting) continue;
      auto released = client_.patch(r, name_of(o), client::PatchType::kStrategicMerge,
                                    release_patch(ref_.uid, uid_of(o)));
      if (!released.ok() && !released.status().is_not_found()) {
        errors.push_back(released.status());
      }
      continue;
    }
    // An orphan.
    if (controller_deleting || !matches || being_deleted(o)) continue;
    if (!controller_ns.empty() && controller_ns != namespace_of(o)) continue;
    if (Status s = can_adopt(); !s.ok()) {
      errors.push_back(
          Status(s.code(), "can't adopt " + key_of(o) + " (" + uid_of(o) + "): " + s.message()));
      continue;
    }
    auto adopted = client_.patch(r, name_of(o), client::PatchType::kStrategicMerge,
                                 adopt_patch(ref_, uid_of(o)));
    if (!adopted.ok()) {
      if (!adopted.status().is_not_found()) errors.push_back(adopted.status());
      continue;
    }
    claimed.push_back(*adopted);
  }
  if (error != nullptr) *error = aggregate(errors);
  return claimed;
}

client::ObjectPtr resolve_controller_ref(const client::Informer& informer, std::string_view kind,
                                         const std::string& ns, const OwnerReference& ref) {
  if (ref.kind != kind) return nullptr;
  client::ObjectPtr obj = informer.get(ns, ref.name);
  if (!obj) return nullptr;
  auto uid = obj->find("metadata");
  if (uid == obj->end() || !uid->is_object()) return nullptr;
  auto u = uid->find("uid");
  if (u == uid->end() || !u->is_string() || u->get_ref<const std::string&>() != ref.uid) {
    return nullptr;
  }
  return obj;
}

std::vector<client::ObjectPtr> selecting_controllers(const client::Informer& informer,
                                                     const json& obj) {
  std::vector<client::ObjectPtr> out;
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return out;
  auto labels = meta->find("labels");
  if (labels == meta->end() || !labels->is_object() || labels->empty()) return out;
  std::string ns;
  if (auto n = meta->find("namespace"); n != meta->end() && n->is_string()) ns = n->get<std::string>();
  for (const client::ObjectPtr& c : informer.list(ns)) {
    auto spec = c->find("spec");
    if (spec == c->end() || !spec->is_object()) continue;
    auto sel = spec->find("selector");
    if (sel == spec->end()) continue;
    auto selector = LabelSelector::from_json(*sel);
    if (!selector.ok() || selector->empty() || selector->matches_nothing()) continue;
    if (selector->matches_json(*labels)) out.push_back(c);
  }
  return out;
}

std::vector<std::string> controller_uid_index(const json& obj) {
  auto ref = controller_of(obj);
  if (!ref) return {};
  return {ref->uid};
}

void add_controller_uid_index(client::Informer& informer) {
  informer.add_index(kControllerUidIndex, controller_uid_index);
}

Status aggregate(const std::vector<Status>& errors) {
  if (errors.empty()) return Status::Ok();
  if (errors.size() == 1) return errors.front();
  std::string message = "[";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) message += ", ";
    message += errors[i].message();
  }
  message += "]";
  return Status(errors.front().code(), message);
}

}  // namespace skiff::controllers::common
