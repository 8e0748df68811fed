#include "controllers/common/node_affinity.h"

#include <optional>
#include <string>
#include <vector>

#include "common/labels.h"
#include "controllers/common/object_meta.h"

namespace skiff::controllers::common {
namespace {

std::optional<LabelOperator> label_operator(std::string_view op) {
  if (op == "In") return LabelOperator::kIn;
  if (op == "NotIn") return LabelOperator::kNotIn;
  if (op == "Exists") return LabelOperator::kExists;
  if (op == "DoesNotExist") return LabelOperator::kDoesNotExist;
  if (op == "Gt") return LabelOperator::kGreaterThan;
  if (op == "Lt") return LabelOperator::kLessThan;
  return std::nullopt;
}

std::vector<std::string> string_values(const json& req) {
  std::vector<std::string> out;
  const json* values = find_path(req, {"values"});
  if (values == nullptr || !values->is_array()) return out;
  for (const json& v : *values) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// NodeSelectorRequirementsAsSelector for one requirement; nullopt when it is malformed.
std::optional<LabelRequirement> label_requirement(const json& req) {
  auto op = label_operator(string_at(req, {"operator"}));
  if (!op) return std::nullopt;
  LabelRequirement r;
  r.key = string_at(req, {"key"});
  r.op = *op;
  r.values = string_values(req);
  switch (*op) {
    case LabelOperator::kIn:
    case LabelOperator::kNotIn:
      if (r.values.empty()) return std::nullopt;
      break;
    case LabelOperator::kExists:
    case LabelOperator::kDoesNotExist:
      if (!r.values.empty()) return std::nullopt;
      break;
    default:  // Gt, Lt
      if (r.values.size() != 1 || !parse_int64(r.values[0])) return std::nullopt;
      break;
  }
  return r;
}

bool field_requirement_matches(const json& req, std::string_view node_name) {
  if (string_at(req, {"key"}) != kObjectNameField) return false;
  std::vector<std::string> values = string_values(req);
  // NodeSelectorRequirementsAsFieldSelector accepts In and NotIn with exactly one value.
  if (values.size() != 1) return false;
  std::string op = string_at(req, {"operator"});
  if (op == "In") return values[0] == node_name;
  if (op == "NotIn") return values[0] != node_name;
  return false;
}

bool array_nonempty(const json* v) { return v != nullptr && v->is_array() && !v->empty(); }

}  // namespace

bool node_selector_term_matches(const json& term, const json& node) {
  const json* expressions = find_path(term, {"matchExpressions"});
  const json* fields = find_path(term, {"matchFields"});
  if (!array_nonempty(expressions) && !array_nonempty(fields)) return false;
  if (array_nonempty(expressions)) {
    Labels labels = labels_of(node);
    LabelLookup lookup = [&labels](std::string_view key) -> std::optional<std::string_view> {
      auto it = labels.find(std::string(key));
      if (it == labels.end()) return std::nullopt;
      return std::string_view(it->second);
    };
    for (const json& req : *expressions) {
      auto r = label_requirement(req);
      if (!r || !r->matches(lookup)) return false;
    }
  }
  if (array_nonempty(fields)) {
    std::string name = name_of(node);
    for (const json& req : *fields) {
      if (!field_requirement_matches(req, name)) return false;
    }
  }
  return true;
}

bool required_node_affinity_matches(const json& pod_spec, const json& node) {
  Labels selector = string_map(find_path(pod_spec, {"nodeSelector"}));
  if (!selector.empty()) {
    Labels labels = labels_of(node);
    for (const auto& [k, v] : selector) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    }
  }
  const json* required = find_path(
      pod_spec, {"affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"});
  if (required == nullptr || required->is_null()) return true;
  const json* terms = find_path(*required, {"nodeSelectorTerms"});
  if (terms == nullptr || !terms->is_array()) return false;
  for (const json& term : *terms) {
    if (node_selector_term_matches(term, node)) return true;
  }
  return false;
}

bool tolerates(const json& toleration, const json& taint) {
  std::string effect = string_at(toleration, {"effect"});
  if (!effect.empty() && effect != string_at(taint, {"effect"})) return false;
  std::string key = string_at(toleration, {"key"});
  if (!key.empty() && key != string_at(taint, {"key"})) return false;
  std::string op = string_at(toleration, {"operator"});
  if (op.empty() || op == "Equal") {
    return string_at(toleration, {"value"}) == string_at(taint, {"value"});
  }
  return op == "Exists";
}

const json* find_untolerated_taint(const json* taints, const json* tolerations, bool no_schedule,
                                   bool no_execute) {
  if (taints == nullptr || !taints->is_array()) return nullptr;
  for (const json& taint : *taints) {
    std::string effect = string_at(taint, {"effect"});
    bool considered =
        (no_schedule && effect == "NoSchedule") || (no_execute && effect == "NoExecute");
    if (!considered) continue;
    bool tolerated = false;
    if (tolerations != nullptr && tolerations->is_array()) {
      for (const json& t : *tolerations) {
        if (tolerates(t, taint)) {
          tolerated = true;
          break;
        }
      }
    }
    if (!tolerated) return &taint;
  }
  return nullptr;
}

}  // namespace skiff::controllers::common
