// Which runtime container a logs, exec or attach request is about, as the kubelet decides it.
#include <nlohmann/json.hpp>

#include "agent/runtime/runtime.h"
#include "agent/server/kubelet_server.h"

namespace skiff::agent::server {

using nlohmann::json;

namespace {

const json* find_named(const json& list, const std::string& name) {
  if (!list.is_array()) return nullptr;
  for (const auto& c : list) {
    if (c.is_object() && c.value("name", "") == name) return &c;
  }
  return nullptr;
}

}  // namespace

Result<ContainerTarget> select_container(const json& pod, const std::string& container,
                                         bool previous,
                                         const std::vector<runtime::ContainerStatus>& attempts) {
  const std::string pod_name =
      pod.contains("metadata") ? pod["metadata"].value("name", "") : std::string();
  static const json kEmpty = json::object();
  const json& spec = pod.contains("spec") && pod["spec"].is_object() ? pod["spec"] : kEmpty;
  const json* c = nullptr;
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (spec.contains(list) && (c = find_named(spec[list], container)) != nullptr) break;
  }
  if (c == nullptr) {
    return Status::NotFound("container \"" + container + "\" is not valid for pod \"" + pod_name +
                            "\"");
  }
  ContainerTarget t;
  t.tty = c->value("tty", false);
  t.stdin = c->value("stdin", false);
  const runtime::ContainerStatus* chosen = nullptr;
  if (previous) {
    if (attempts.size() >= 2) chosen = &attempts[attempts.size() - 2];
    if (chosen == nullptr || chosen->state != runtime::ContainerState::kExited) {
      return Status::BadRequest("previous terminated container \"" + container + "\" in pod \"" +
                                pod_name + "\" not found");
    }
  } else if (!attempts.empty()) {
    chosen = &attempts.back();
  } else {
    // Not started yet: the reason the pod's status gives (ContainerCreating, ErrImagePull,
    // PodInitializing, ...).
    std::string reason = "ContainerCreating";
    if (pod.contains("status") && pod["status"].is_object()) {
      for (const char* list :
           {"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
        const json& st = pod["status"];
        const json* cs = st.contains(list) ? find_named(st[list], container) : nullptr;
        if (cs == nullptr || !cs->contains("state") || !(*cs)["state"].contains("waiting")) {
          continue;
        }
        std::string r = (*cs)["state"]["waiting"].value("reason", "");
        if (!r.empty()) reason = r;
      }
    }
    if (reason == "ErrImagePull") reason = "image can't be pulled";
    if (reason == "ImagePullBackOff") reason = "trying and failing to pull image";
    return Status::BadRequest("container \"" + container + "\" in pod \"" + pod_name +
                              "\" is waiting to start: " + reason);
  }
  t.id = chosen->id;
  t.log_path = chosen->log_path;
  t.running = chosen->state == runtime::ContainerState::kRunning;
  return t;
}

}  // namespace skiff::agent::server
