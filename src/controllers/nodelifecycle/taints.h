// Node conditions, taints and pod tolerations as the node lifecycle controller sees them
// (Kubernetes 1.32: pkg/controller/nodelifecycle, pkg/controller/tainteviction,
// k8s.io/api/core/v1 toleration.go, plugin/pkg/admission/defaulttolerationseconds).
//
// All functions are pure and thread-safe.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/time.h"

namespace skiff::controllers::nodelifecycle {

using nlohmann::json;

inline constexpr char kTaintNotReady[] = "node.kubernetes.io/not-ready";
inline constexpr char kTaintUnreachable[] = "node.kubernetes.io/unreachable";
inline constexpr char kTaintUnschedulable[] = "node.kubernetes.io/unschedulable";
inline constexpr char kTaintMemoryPressure[] = "node.kubernetes.io/memory-pressure";
inline constexpr char kTaintDiskPressure[] = "node.kubernetes.io/disk-pressure";
inline constexpr char kTaintPIDPressure[] = "node.kubernetes.io/pid-pressure";
inline constexpr char kTaintNetworkUnavailable[] = "node.kubernetes.io/network-unavailable";

// The condition of `type` in obj.status.conditions (a Node or a Pod), or null.
const json* find_condition(const json& obj, std::string_view type);
// Its status ("True", "False", "Unknown"), or "" when the condition is absent.
std::string condition_status(const json& obj, std::string_view type);

// What the controller writes when a node's kubelet has gone silent: Ready, MemoryPressure,
// DiskPressure and PIDPressure become Unknown (reason NodeStatusUnknown, "Kubelet stopped
// posting node status."), or are added as Unknown (NodeStatusNeverUpdated, "Kubelet never
// posted node status.") when missing; lastTransitionTime `now` for those that change,
// lastHeartbeatTime kept. Returns true when anything changed.
bool mark_node_status_unknown(json& node, TimePoint now);

// v1.Toleration.ToleratesTaint: the effects match (or the toleration has none), the keys
// match (or the toleration has none), and operator Exists, or Equal (the default) with the
// same value.
bool tolerates(const json& toleration, const json& taint);

// The taints a node should carry, given its conditions:
//  - NoSchedule (TaintNodesByCondition): not-ready for Ready=False, unreachable for
//    Ready=Unknown, memory-pressure, disk-pressure, pid-pressure and network-unavailable for
//    those conditions True, unschedulable for spec.unschedulable;
//  - NoExecute (taint-based eviction): not-ready for Ready=False, unreachable for
//    Ready=Unknown, stamped with timeAdded `now` when first added.
// Other taints are kept as they are, in their order; taints of the kinds above that are
// still wanted keep their place (and timeAdded); new ones are appended.
json desired_taints(const json& node, TimePoint now);

// How long `pod` may stay on a node carrying `no_execute_taints` (an array of NoExecute
// taints): nullopt when it tolerates them all for ever; zero when it does not tolerate one
// of them; else the shortest tolerationSeconds of the tolerations used. A pod without a
// toleration for not-ready / unreachable NoExecute taints is treated as the API server's
// DefaultTolerationSeconds admission would have made it: tolerating them for
// `default_toleration`.
std::optional<std::chrono::seconds> toleration_time(const json& pod,
                                                    const json& no_execute_taints,
                                                    std::chrono::seconds default_toleration);

}  // namespace skiff::controllers::nodelifecycle
