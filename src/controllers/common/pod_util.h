// Pods as workload controllers see them (controller_utils.go, api/v1/pod/util.go): whether a
// pod is active, ready and available; which pods to delete first when scaling down; and the
// pod a controller creates from its template.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/status.h"
#include "common/time.h"
#include "controllers/common/controller_ref.h"

namespace skiff::controllers::common {

using nlohmann::json;

// controller.IsPodActive: not Succeeded, not Failed and not being deleted.
bool is_pod_active(const json& pod);
// podutil.IsPodReady: the Ready condition is True.
bool is_pod_ready(const json& pod);
// The Ready condition, or null.
const json* pod_ready_condition(const json& pod);
// podutil.IsPodAvailable: ready, and for min_ready_seconds > 0 ready since more than
// min_ready_seconds before `now` (by the Ready condition's lastTransitionTime).
bool is_pod_available(const json& pod, int32_t min_ready_seconds, TimePoint now);
// controller.FilterActivePods.
std::vector<client::ObjectPtr> filter_active_pods(const std::vector<client::ObjectPtr>& pods);

// The annotation controller.kubernetes.io/pod-deletion-cost: pods with a lower cost are
// deleted first. Absent or invalid: 0.
inline constexpr std::string_view kPodDeletionCostAnnotation =
    "controller.kubernetes.io/pod-deletion-cost";
int32_t pod_deletion_cost(const json& pod);

// controller.ActivePodsWithRanks.Less (Kubernetes 1.32, LogarithmicScaleDown and
// PodDeletionCost on): true when pod `a` (with rank `rank_a`, the number of related active
// pods on its node) should be deleted before pod `b`. In order:
//  1. unscheduled < scheduled;
//  2. Pending < Unknown < Running;
//  3. not ready < ready;
//  4. lower pod-deletion-cost < higher;
//  5. higher rank (more pods doubled up on the node) < lower;
//  6. both ready: ready more recently < ready longer, compared on a log2 scale of the time
//     since `now` (equal buckets: by uid);
//  7. more container restarts < fewer;
//  8. created more recently < created earlier, on the same log2 scale (equal buckets: by uid).
bool deletion_precedes(const json& a, int rank_a, const json& b, int rank_b, TimePoint now);

// replicaset.getPodsToDelete: the `diff` pods of `pods` to delete first, ranking each pod by
// the active pods of `related` (pods of the owner's sibling controllers) on its node.
std::vector<client::ObjectPtr> pods_to_delete(std::vector<client::ObjectPtr> pods,
                                              const std::vector<client::ObjectPtr>& related,
                                              size_t diff, TimePoint now);

// controller.GetPodFromTemplate: a pod to create for `parent` from `pod_template`: the
// template's labels, annotations and finalizers, its spec, generateName "<parent>-" and the
// controller reference. BadRequest "unable to create pods, no labels" when the template has
// no labels, as RealPodControl refuses such pods.
Result<json> pod_from_template(const json& pod_template, const json& parent,
                               const OwnerReference& controller_ref);

}  // namespace skiff::controllers::common
