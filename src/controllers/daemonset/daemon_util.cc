#include "controllers/daemonset/daemon_util.h"

#include <cmath>
#include <utility>

#include "controllers/common/controller_history.h"
#include "controllers/common/node_affinity.h"
#include "controllers/common/object_meta.h"

namespace skiff::controllers::daemonset {
namespace {

namespace cc = ::skiff::controllers::common;

// v1helper.AddOrUpdateTolerationInPodSpec: a toleration matching on key, operator, value and
// effect is replaced; otherwise the toleration is appended.
void add_or_update_toleration(json& pod_spec, const json& toleration) {
  json& tolerations = pod_spec["tolerations"];
  if (!tolerations.is_array()) tolerations = json::array();
  auto same = [](const json& a, const json& b, const char* f) {
    return cc::string_at(a, {f}) == cc::string_at(b, {f});
  };
  for (json& t : tolerations) {
    if (same(t, toleration, "key") && same(t, toleration, "operator") &&
        same(t, toleration, "value") && same(t, toleration, "effect")) {
      t = toleration;
      return;
    }
  }
  tolerations.push_back(toleration);
}

json exists_toleration(const char* key, const char* effect) {
  return json{{"key", key}, {"operator", "Exists"}, {"effect", effect}};
}

Result<int> scaled_int_or_percent(const json* value, int total) {
  if (value == nullptr || value->is_null()) return 0;
  if (value->is_number_integer()) return static_cast<int>(value->get<int64_t>());
  if (!value->is_string()) return Status::BadRequest("invalid type: neither int nor percentage");
  std::string s = value->get<std::string>();
  if (s.empty() || s.back() != '%') {
    return Status::BadRequest("invalid type: string is not a percentage");
  }
  auto n = cc::parse_int64(std::string_view(s).substr(0, s.size() - 1));
  if (!n) return Status::BadRequest("invalid value \"" + s + "\"");
  return static_cast<int>(std::ceil(static_cast<double>(*n) * total / 100.0));
}

const json* rolling_update_field(const json& ds, const char* field) {
  if (cc::string_at(ds, {"spec", "updateStrategy", "type"}) != "RollingUpdate") return nullptr;
  return cc::find_path(ds, {"spec", "updateStrategy", "rollingUpdate", field});
}

}  // namespace

void add_daemon_pod_tolerations(json& pod_spec) {
  add_or_update_toleration(pod_spec,
                           exists_toleration("node.kubernetes.io/not-ready", "NoExecute"));
  add_or_update_toleration(pod_spec,
                           exists_toleration("node.kubernetes.io/unreachable", "NoExecute"));
  add_or_update_toleration(pod_spec,
                           exists_toleration("node.kubernetes.io/disk-pressure", "NoSchedule"));
  add_or_update_toleration(pod_spec,
                           exists_toleration("node.kubernetes.io/memory-pressure", "NoSchedule"));
  add_or_update_toleration(pod_spec,
                           exists_toleration("node.kubernetes.io/pid-pressure", "NoSchedule"));
  add_or_update_toleration(pod_spec,
                           exists_toleration("node.kubernetes.io/unschedulable", "NoSchedule"));
  if (cc::bool_at(pod_spec, {"hostNetwork"})) {
    add_or_update_toleration(
        pod_spec, exists_toleration("node.kubernetes.io/network-unavailable", "NoSchedule"));
  }
}

std::optional<int64_t> template_generation(const json& ds) {
  auto value = cc::annotation(ds, kTemplateGenerationAnnotation);
  if (!value) return std::nullopt;
  return cc::parse_int64(*value);
}

json daemon_pod_template(const json& ds, std::optional<int64_t> generation,
                         const std::string& hash) {
  const json* tmpl = cc::find_path(ds, {"spec", "template"});
  json t = tmpl != nullptr && tmpl->is_object() ? *tmpl : json::object();
  if (!t["spec"].is_object()) t["spec"] = json::object();
  add_daemon_pod_tolerations(t["spec"]);
  if (!t["metadata"].is_object()) t["metadata"] = json::object();
  json& labels = t["metadata"]["labels"];
  if (!labels.is_object()) labels = json::object();
  if (generation) labels[std::string(kTemplateGenerationLabel)] = std::to_string(*generation);
  if (!hash.empty()) labels[std::string(cc::kControllerRevisionHashLabel)] = hash;
  return t;
}

void set_node_name_affinity(json& pod_spec, const std::string& node_name) {
  json term = {{"matchFields", json::array({json{{"key", std::string(cc::kObjectNameField)},
                                                 {"operator", "In"},
                                                 {"values", json::array({node_name})}}})}};
  json& affinity = pod_spec["affinity"];
  if (!affinity.is_object()) affinity = json::object();
  json& node_affinity = affinity["nodeAffinity"];
  if (!node_affinity.is_object()) node_affinity = json::object();
  node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
      {"nodeSelectorTerms", json::array({std::move(term)})}};
}

std::optional<std::string> target_node_name(const json& pod) {
  std::string node = cc::string_at(pod, {"spec", "nodeName"});
  if (!node.empty()) return node;
  const json* terms =
      cc::find_path(pod, {"spec", "affinity", "nodeAffinity",
                          "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"});
  if (terms == nullptr || !terms->is_array()) return std::nullopt;
  for (const json& term : *terms) {
    const json* fields = cc::find_path(term, {"matchFields"});
    if (fields == nullptr || !fields->is_array()) continue;
    for (const json& req : *fields) {
      if (cc::string_at(req, {"key"}) != cc::kObjectNameField ||
          cc::string_at(req, {"operator"}) != "In") {
        continue;
      }
      const json* values = cc::find_path(req, {"values"});
      if (values == nullptr || !values->is_array() || values->size() != 1 ||
          !(*values)[0].is_string()) {
        return std::nullopt;
      }
      return (*values)[0].get<std::string>();
    }
  }
  return std::nullopt;
}

bool is_pod_updated(const json& pod, const std::string& hash, std::optional<int64_t> generation) {
  Labels labels = cc::labels_of(pod);
  auto it = labels.find(std::string(cc::kControllerRevisionHashLabel));
  bool hash_matches = !hash.empty() && it != labels.end() && it->second == hash;
  auto gen = labels.find(std::string(kTemplateGenerationLabel));
  bool generation_matches =
      generation && gen != labels.end() && gen->second == std::to_string(*generation);
  return hash_matches || generation_matches;
}

NodeFit node_should_run_daemon_pod(const json& node, const json& ds) {
  NodeFit fit;
  std::string name = cc::name_of(node);
  std::string template_node = cc::string_at(ds, {"spec", "template", "spec", "nodeName"});
  if (!template_node.empty() && template_node != name) return fit;
  // The pod as it would be created on this node.
  const json* tmpl_spec = cc::find_path(ds, {"spec", "template", "spec"});
  json spec = tmpl_spec != nullptr && tmpl_spec->is_object() ? *tmpl_spec : json::object();
  add_daemon_pod_tolerations(spec);
  if (!cc::required_node_affinity_matches(spec, node)) return fit;
  const json* taints = cc::find_path(node, {"spec", "taints"});
  const json* tolerations = cc::find_path(spec, {"tolerations"});
  if (cc::find_untolerated_taint(taints, tolerations, true, true) != nullptr) {
    fit.should_continue_running =
        cc::find_untolerated_taint(taints, tolerations, false, true) == nullptr;
    return fit;
  }
  fit.should_run = true;
  fit.should_continue_running = true;
  return fit;
}

Result<int> surge_count(const json& ds, int desired) {
  return scaled_int_or_percent(rolling_update_field(ds, "maxSurge"), desired);
}

Result<int> unavailable_count(const json& ds, int desired) {
  return scaled_int_or_percent(rolling_update_field(ds, "maxUnavailable"), desired);
}

bool allows_surge(const json& ds) {
  auto surge = surge_count(ds, 1);
  return surge.ok() && *surge != 0;
}

}  // namespace skiff::controllers::daemonset
