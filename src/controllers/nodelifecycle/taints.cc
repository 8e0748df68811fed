#include "controllers/nodelifecycle/taints.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace skiff::controllers::nodelifecycle {
namespace {

constexpr char kNoSchedule[] = "NoSchedule";
constexpr char kNoExecute[] = "NoExecute";

// The NoSchedule taints TaintNodesByCondition manages, and the NoExecute ones of
// taint-based eviction.
constexpr std::array<const char*, 7> kNoScheduleKeys = {
    kTaintNotReady,     kTaintUnreachable, kTaintMemoryPressure,    kTaintDiskPressure,
    kTaintPIDPressure,  kTaintUnschedulable, kTaintNetworkUnavailable};
constexpr std::array<const char*, 2> kNoExecuteKeys = {kTaintNotReady, kTaintUnreachable};

std::string str(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

bool managed(const json& taint) {
  std::string key = str(taint, "key");
  std::string effect = str(taint, "effect");
  if (effect == kNoSchedule) {
    return std::find(kNoScheduleKeys.begin(), kNoScheduleKeys.end(), key) !=
           kNoScheduleKeys.end();
  }
  if (effect == kNoExecute) {
    return std::find(kNoExecuteKeys.begin(), kNoExecuteKeys.end(), key) != kNoExecuteKeys.end();
  }
  return false;
}

const json* conditions_of(const json& obj) {
  if (!obj.is_object()) return nullptr;
  auto st = obj.find("status");
  if (st == obj.end() || !st->is_object()) return nullptr;
  auto c = st->find("conditions");
  return c != st->end() && c->is_array() ? &*c : nullptr;
}

}  // namespace

const json* find_condition(const json& obj, std::string_view type) {
  const json* conditions = conditions_of(obj);
  if (conditions == nullptr) return nullptr;
  for (const json& c : *conditions) {
    if (c.is_object() && str(c, "type") == type) return &c;
  }
  return nullptr;
}

std::string condition_status(const json& obj, std::string_view type) {
  const json* c = find_condition(obj, type);
  return c != nullptr ? str(*c, "status") : "";
}

bool mark_node_status_unknown(json& node, TimePoint now) {
  if (!node.is_object()) return false;
  json& status = node["status"];
  if (!status.is_object()) status = json::object();
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  std::string now_text = format_rfc3339(now);
  std::string created;
  if (auto m = node.find("metadata"); m != node.end()) created = str(*m, "creationTimestamp");
  bool changed = false;
  for (const char* type : {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}) {
    json* cond = nullptr;
    for (json& c : conditions) {
      if (c.is_object() && str(c, "type") == type) cond = &c;
    }
    if (cond == nullptr) {
      json c = {{"type", type},
                {"status", "Unknown"},
                {"reason", "NodeStatusNeverUpdated"},
                {"message", "Kubelet never posted node status."},
                {"lastTransitionTime", now_text}};
      if (!created.empty()) c["lastHeartbeatTime"] = created;
      conditions.push_back(std::move(c));
      changed = true;
    } else if (str(*cond, "status") != "Unknown") {
      (*cond)["status"] = "Unknown";
      (*cond)["reason"] = "NodeStatusUnknown";
      (*cond)["message"] = "Kubelet stopped posting node status.";
      (*cond)["lastTransitionTime"] = now_text;
      changed = true;
    }
  }
  return changed;
}

bool tolerates(const json& toleration, const json& taint) {
  if (!toleration.is_object() || !taint.is_object()) return false;
  std::string effect = str(toleration, "effect");
  if (!effect.empty() && effect != str(taint, "effect")) return false;
  std::string key = str(toleration, "key");
  if (!key.empty() && key != str(taint, "key")) return false;
  std::string op = str(toleration, "operator");
  if (op.empty() || op == "Equal") return str(toleration, "value") == str(taint, "value");
  return op == "Exists";
}

json desired_taints(const json& node, TimePoint now) {
  std::vector<std::pair<std::string, const char*>> wanted;  // key, effect
  std::string ready = condition_status(node, "Ready");
  if (ready == "False") {
    wanted.emplace_back(kTaintNotReady, kNoSchedule);
    wanted.emplace_back(kTaintNotReady, kNoExecute);
  } else if (ready == "Unknown") {
    wanted.emplace_back(kTaintUnreachable, kNoSchedule);
    wanted.emplace_back(kTaintUnreachable, kNoExecute);
  }
  for (auto [type, key] : {std::pair{"MemoryPressure", kTaintMemoryPressure},
                           std::pair{"DiskPressure", kTaintDiskPressure},
                           std::pair{"PIDPressure", kTaintPIDPressure},
                           std::pair{"NetworkUnavailable", kTaintNetworkUnavailable}}) {
    if (condition_status(node, type) == "True") wanted.emplace_back(key, kNoSchedule);
  }
  bool unschedulable = false;
  if (auto spec = node.find("spec"); spec != node.end() && spec->is_object()) {
    auto u = spec->find("unschedulable");
    unschedulable = u != spec->end() && u->is_boolean() && u->get<bool>();
  }
  if (unschedulable) wanted.emplace_back(kTaintUnschedulable, kNoSchedule);

  json out = json::array();
  std::vector<bool> present(wanted.size(), false);
  if (auto spec = node.find("spec"); spec != node.end() && spec->is_object()) {
    if (auto taints = spec->find("taints"); taints != spec->end() && taints->is_array()) {
      for (const json& t : *taints) {
        if (!managed(t)) {
          out.push_back(t);
          continue;
        }
        for (size_t i = 0; i < wanted.size(); ++i) {
          if (!present[i] && str(t, "key") == wanted[i].first &&
              str(t, "effect") == wanted[i].second) {
            present[i] = true;
            out.push_back(t);
            break;
          }
        }
      }
    }
  }
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (present[i]) continue;
    json t = {{"key", wanted[i].first}, {"effect", wanted[i].second}};
    if (std::string_view(wanted[i].second) == kNoExecute) t["timeAdded"] = format_rfc3339(now);
    out.push_back(std::move(t));
  }
  return out;
}

std::optional<std::chrono::seconds> toleration_time(const json& pod,
                                                    const json& no_execute_taints,
                                                    std::chrono::seconds default_toleration) {
  if (!no_execute_taints.is_array() || no_execute_taints.empty()) return std::nullopt;
  json tolerations = json::array();
  if (auto spec = pod.find("spec"); spec != pod.end() && spec->is_object()) {
    if (auto t = spec->find("tolerations"); t != spec->end() && t->is_array()) tolerations = *t;
  }
  // DefaultTolerationSeconds: a toleration with that key (or none) and effect NoExecute (or
  // none) counts as one for the taint, whatever its operator.
  bool has_not_ready = false;
  bool has_unreachable = false;
  for (const json& t : tolerations) {
    std::string key = str(t, "key");
    std::string effect = str(t, "effect");
    if (!effect.empty() && effect != kNoExecute) continue;
    if (key.empty() || key == kTaintNotReady) has_not_ready = true;
    if (key.empty() || key == kTaintUnreachable) has_unreachable = true;
  }
  for (auto [has, key] : {std::pair{has_not_ready, kTaintNotReady},
                          std::pair{has_unreachable, kTaintUnreachable}}) {
    if (!has) {
      tolerations.push_back({{"key", key},
                             {"operator", "Exists"},
                             {"effect", kNoExecute},
                             {"tolerationSeconds", default_toleration.count()}});
    }
  }
  // GetMatchingTolerations, then getMinTolerationTime.
  int64_t min_seconds = std::numeric_limits<int64_t>::max();
  for (const json& taint : no_execute_taints) {
    const json* used = nullptr;
    for (const json& t : tolerations) {
      if (tolerates(t, taint)) {
        used = &t;
        break;
      }
    }
    if (used == nullptr) return std::chrono::seconds(0);
    auto seconds = used->find("tolerationSeconds");
    if (seconds == used->end() || !seconds->is_number_integer()) continue;
    min_seconds = std::min(min_seconds, std::max<int64_t>(0, seconds->get<int64_t>()));
  }
  if (min_seconds == std::numeric_limits<int64_t>::max()) return std::nullopt;
  return std::chrono::seconds(min_seconds);
}

}  // namespace skiff::controllers::nodelifecycle
