// What the DaemonSet controller decides per node and per pod (Kubernetes 1.32
// pkg/controller/daemon/util and the predicates of daemon_controller.go): whether a node should
// run the daemon pod, the pod template it gets (automatic tolerations, generation and
// revision labels), which node a pod is meant for, and whether a pod is up to date.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff::controllers::daemonset {

using nlohmann::json;

// extensions.DaemonSetTemplateGenerationKey: the label carrying the template generation a
// pod was created from, read from the DaemonSet's annotation of the same meaning.
inline constexpr std::string_view kTemplateGenerationLabel = "pod-template-generation";
inline constexpr std::string_view kTemplateGenerationAnnotation =
    "deprecated.daemonset.template.generation";

// util.AddOrUpdateDaemonPodTolerations: tolerations without time limit for the taints node
// problems bring, so that daemon pods are neither evicted nor kept off a node by them:
// node.kubernetes.io/not-ready and unreachable (NoExecute), disk-pressure, memory-pressure,
// pid-pressure and unschedulable (NoSchedule), and network-unavailable (NoSchedule) for pods
// on the host network. A toleration of the same key, operator, value and effect is replaced.
void add_daemon_pod_tolerations(json& pod_spec);

// util.GetTemplateGeneration: the DaemonSet's template generation annotation, if it holds an
// integer.
std::optional<int64_t> template_generation(const json& ds);

// util.CreatePodTemplate: the DaemonSet's template with the automatic tolerations, the
// pod-template-generation label (when `generation` is known) and controller-revision-hash
// label `hash` (when not empty).
json daemon_pod_template(const json& ds, std::optional<int64_t> generation,
                         const std::string& hash);

// util.ReplaceDaemonSetPodNodeNameNodeAffinity: makes the required node affinity of
// `pod_spec` the single term matchFields metadata.name In [node_name] (the other terms have
// already been checked against the node), keeping the preferred terms, so that the
// scheduler binds the pod to that node.
void set_node_name_affinity(json& pod_spec, const std::string& node_name);

// util.GetTargetNodeName: spec.nodeName, or for a pod not yet bound the node its required
// node affinity names through matchFields metadata.name In; nullopt when neither is there.
std::optional<std::string> target_node_name(const json& pod);

// util.IsPodUpdated: the pod carries controller-revision-hash `hash`, or the
// pod-template-generation of `generation`.
bool is_pod_updated(const json& pod, const std::string& hash, std::optional<int64_t> generation);

struct NodeFit {
  bool should_run = false;               // a daemon pod should be created here
  bool should_continue_running = false;  // a daemon pod already here may stay
};

// NodeShouldRunDaemonPod: a node runs the daemon pod when the template's nodeName (if any)
// is the node, spec.nodeSelector and required node affinity match it, and the pod (with the
// automatic tolerations) tolerates its NoSchedule and NoExecute taints. A pod already there
// may stay when only NoSchedule taints are not tolerated.
NodeFit node_should_run_daemon_pod(const json& node, const json& ds);

// util.SurgeCount and util.UnavailableCount: rollingUpdate.maxSurge / maxUnavailable of a
// RollingUpdate DaemonSet scaled to `desired` nodes, percentages rounded up; 0 for OnDelete or
// when unset. BadRequest for a string that is not a percentage.
Result<int> surge_count(const json& ds, int desired);
Result<int> unavailable_count(const json& ds, int desired);

// util.AllowsSurge: a RollingUpdate DaemonSet with maxSurge above zero.
bool allows_surge(const json& ds);

}  // namespace skiff::controllers::daemonset
