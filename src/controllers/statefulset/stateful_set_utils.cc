#include "controllers/statefulset/stateful_set_utils.h"

#include <cctype>
#include <climits>
#include <set>

#include "controllers/common/controller_history.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_util.h"

namespace skiff::controllers::statefulset {
namespace {

namespace cc = ::skiff::controllers::common;

}  // namespace

std::pair<std::string, int> parent_and_ordinal(std::string_view pod_name) {
  size_t dash = pod_name.rfind('-');
  if (dash == std::string_view::npos || dash + 1 == pod_name.size()) return {"", -1};
  std::string_view digits = pod_name.substr(dash + 1);
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return {"", -1};
  }
  auto n = cc::parse_int64(digits);
  if (!n || *n > INT32_MAX) return {"", -1};
  return {std::string(pod_name.substr(0, dash)), static_cast<int>(*n)};
}

int ordinal_of(const json& pod) { return parent_and_ordinal(cc::name_of(pod)).second; }

std::string pod_name(const json& set, int ordinal) {
  return cc::name_of(set) + "-" + std::to_string(ordinal);
}

bool is_member_of(const json& set, const json& pod) {
  return parent_and_ordinal(cc::name_of(pod)).first == cc::name_of(set);
}

std::string claim_name(const json& set, const json& claim_template, int ordinal) {
  return cc::name_of(claim_template) + "-" + cc::name_of(set) + "-" + std::to_string(ordinal);
}

std::vector<std::pair<std::string, json>> persistent_volume_claims(const json& set, int ordinal) {
  std::vector<std::pair<std::string, json>> out;
  const json* templates = cc::find_path(set, {"spec", "volumeClaimTemplates"});
  if (templates == nullptr || !templates->is_array()) return out;
  const json* match_labels = cc::find_path(set, {"spec", "selector", "matchLabels"});
  for (const json& t : *templates) {
    if (!t.is_object()) continue;
    json meta = {{"name", claim_name(set, t, ordinal)}, {"namespace", cc::namespace_of(set)}};
    json labels = json::object();
    if (const json* l = cc::find_path(t, {"metadata", "labels"}); l != nullptr && l->is_object()) {
      labels = *l;
    }
    if (match_labels != nullptr && match_labels->is_object()) {
      for (auto it = match_labels->begin(); it != match_labels->end(); ++it) {
        labels[it.key()] = it.value();
      }
    }
    if (!labels.empty()) meta["labels"] = std::move(labels);
    if (const json* a = cc::find_path(t, {"metadata", "annotations"});
        a != nullptr && a->is_object() && !a->empty()) {
      meta["annotations"] = *a;
    }
    json claim = {{"apiVersion", "v1"},
                  {"kind", "PersistentVolumeClaim"},
                  {"metadata", std::move(meta)},
                  {"spec", t.value("spec", json::object())}};
    out.emplace_back(cc::name_of(t), std::move(claim));
  }
  return out;
}

bool identity_matches(const json& set, const json& pod) {
  auto [parent, ordinal] = parent_and_ordinal(cc::name_of(pod));
  if (ordinal < 0 || parent != cc::name_of(set)) return false;
  if (cc::name_of(pod) != pod_name(set, ordinal)) return false;
  if (cc::namespace_of(pod) != cc::namespace_of(set)) return false;
  Labels labels = cc::labels_of(pod);
  auto name = labels.find(std::string(kPodNameLabel));
  auto index = labels.find(std::string(kPodIndexLabel));
  return name != labels.end() && name->second == cc::name_of(pod) && index != labels.end() &&
         index->second == std::to_string(ordinal);
}

bool storage_matches(const json& set, const json& pod) {
  int ordinal = ordinal_of(pod);
  if (ordinal < 0) return false;
  const json* volumes = cc::find_path(pod, {"spec", "volumes"});
  for (const auto& [template_name, claim] : persistent_volume_claims(set, ordinal)) {
    bool found = false;
    if (volumes != nullptr && volumes->is_array()) {
      for (const json& v : *volumes) {
        if (cc::string_at(v, {"name"}) != template_name) continue;
        found = cc::string_at(v, {"persistentVolumeClaim", "claimName"}) == cc::name_of(claim);
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

void update_identity(const json& set, json& pod) {
  int ordinal = ordinal_of(pod);
  std::string name = pod_name(set, ordinal);
  pod["metadata"]["name"] = name;
  pod["metadata"]["namespace"] = cc::namespace_of(set);
  json& labels = pod["metadata"]["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[std::string(kPodNameLabel)] = name;
  labels[std::string(kPodIndexLabel)] = std::to_string(ordinal);
}

void update_storage(const json& set, json& pod) {
  auto claims = persistent_volume_claims(set, ordinal_of(pod));
  if (claims.empty()) return;
  json volumes = json::array();
  std::set<std::string> names;
  for (const auto& [template_name, claim] : claims) {
    names.insert(template_name);
    volumes.push_back({{"name", template_name},
                       {"persistentVolumeClaim", {{"claimName", cc::name_of(claim)}}}});
  }
  const json* current = cc::find_path(pod, {"spec", "volumes"});
  if (current != nullptr && current->is_array()) {
    for (const json& v : *current) {
      if (!names.count(cc::string_at(v, {"name"}))) volumes.push_back(v);
    }
  }
  pod["spec"]["volumes"] = std::move(volumes);
}

Result<json> new_stateful_set_pod(const json& set, int ordinal,
                                  const common::OwnerReference& ref) {
  const json* tmpl = cc::find_path(set, {"spec", "template"});
  auto pod = cc::pod_from_template(tmpl != nullptr ? *tmpl : json::object(), set, ref);
  if (!pod.ok()) return pod.status();
  json p = std::move(*pod);
  p["metadata"]["name"] = pod_name(set, ordinal);
  update_identity(set, p);
  // Fixed at creation: a pod's hostname and subdomain cannot change afterwards.
  p["spec"]["hostname"] = cc::name_of(p);
  std::string service = cc::string_at(set, {"spec", "serviceName"});
  if (!service.empty()) p["spec"]["subdomain"] = service;
  update_storage(set, p);
  return p;
}

json apply_revision(const json& set, const json& revision) {
  json out = set;
  const json* tmpl = cc::find_path(revision, {"data", "spec", "template"});
  if (tmpl == nullptr || !tmpl->is_object()) return out;
  json t = *tmpl;
  t.erase("$patch");
  out["spec"]["template"] = std::move(t);
  return out;
}

std::string pod_revision(const json& pod) {
  return cc::string_at(pod, {"metadata", "labels", std::string(cc::kControllerRevisionHashLabel)});
}

void set_pod_revision(json& pod, const std::string& revision_name) {
  pod["metadata"]["labels"][std::string(cc::kControllerRevisionHashLabel)] = revision_name;
}

}  // namespace skiff::controllers::statefulset
