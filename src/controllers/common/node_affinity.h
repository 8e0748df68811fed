// Which nodes a pod may run on, as the DaemonSet controller decides it before any pod exists
// (Kubernetes 1.32: component-helpers nodeaffinity, v1helper.FindMatchingUntoleratedTaint,
// v1.Toleration.ToleratesTaint): spec.nodeSelector, required node affinity, and taints the
// pod must tolerate.
//
// All functions are pure and thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace skiff::controllers::common {

using nlohmann::json;

// metav1.ObjectNameField: the one field a NodeSelectorTerm's matchFields may name.
inline constexpr std::string_view kObjectNameField = "metadata.name";

// One v1.NodeSelectorTerm against `node`: every matchExpressions requirement (In, NotIn,
// Exists, DoesNotExist, Gt, Lt) against its labels and every matchFields requirement
// (metadata.name In/NotIn) against its name. A term with neither, or with a malformed
// requirement (an unknown operator, Gt with other than one integer), matches nothing.
bool node_selector_term_matches(const json& term, const json& node);

// nodeaffinity.GetRequiredNodeAffinity(pod).Match(node) for a pod spec: every
// spec.nodeSelector label is on the node with that value, and when
// affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution is set, one of its
// terms matches.
bool required_node_affinity_matches(const json& pod_spec, const json& node);

// v1.Toleration.ToleratesTaint: the effects match (or the toleration names none), the keys
// match (or the toleration names none), and the operator is Exists, or Equal (the default)
// with the same value.
bool tolerates(const json& toleration, const json& taint);

// v1helper.FindMatchingUntoleratedTaint: the first of `taints` whose effect is NoSchedule
// (when no_schedule) or NoExecute (when no_execute) and that no toleration of `tolerations`
// tolerates; null when there is none. Either argument may be null or not an array.
const json* find_untolerated_taint(const json* taints, const json* tolerations, bool no_schedule,
                                   bool no_execute);

}  // namespace skiff::controllers::common
