// The filter and score plugins, as pure functions over the compact structs of cluster.h.
//
// Filters, in kube-scheduler's default order (a node fails at the first that rejects it):
//   NodeUnschedulable  spec.unschedulable unless the pod tolerates
//                      node.kubernetes.io/unschedulable:NoSchedule
//   TaintToleration    NoSchedule / NoExecute taints the pod does not tolerate (including the
//                      not-ready / unreachable taint of a node that is not Ready)
//   NodeAffinity       spec.nodeSelector and required node affinity
//   NodePorts          host ports already used on the node
//   NodeResourcesFit   pod count, cpu, memory, ephemeral-storage, extended resources
//   InterPodAffinity   required pod affinity / anti-affinity, and existing pods' anti-affinity
// Scores (each normalized to 0..100, then weighted by the profile):
//   NodeResourcesFit (LeastAllocated or MostAllocated over cpu and memory),
//   NodeResourcesBalancedAllocation, TaintToleration (PreferNoSchedule), NodeAffinity
//   (preferred terms), InterPodAffinity (preferred terms, and existing pods' terms).
//
// All functions are pure and thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler/cluster.h"

namespace skiff::scheduler {

inline constexpr int64_t kMaxNodeScore = 100;

// Why a filter rejected a node. The text is kube-scheduler's (reason_text).
enum class Reason : uint8_t {
  kNodeUnschedulable,
  kUntoleratedTaint,  // a = taint key, b = taint value
  kNodeAffinity,
  kNodePorts,
  kTooManyPods,
  kInsufficientCpu,
  kInsufficientMemory,
  kInsufficientEphemeralStorage,
  kInsufficientScalar,  // a = resource name
  kPodAffinity,
  kPodAntiAffinity,
  kExistingPodsAntiAffinity,
};

struct FailureReason {
  Reason reason = Reason::kNodeAffinity;
  uint32_t a = 0;
  uint32_t b = 0;
  friend bool operator==(const FailureReason&, const FailureReason&) = default;
};

// "Insufficient cpu", "node(s) had untolerated taint {key: value}", ...
std::string reason_text(const FailureReason& r, const Interner& strings);

enum class FilterCode : uint8_t {
  kSuccess,
  kUnschedulable,  // might pass after preempting pods
  kUnresolvable,   // UnschedulableAndUnresolvable: preemption cannot help
};

// ---- individual filters -------------------------------------------------------------------

bool node_unschedulable_fits(const PodInfo& pod, const Node& node, const Interner& strings);
// The first NoSchedule/NoExecute taint the pod does not tolerate, or null.
const Taint* find_untolerated_taint(const PodInfo& pod, const Node& node);
bool node_affinity_fits(const PodInfo& pod, const Node& node, const Interner& strings);
bool host_ports_fit(const PodInfo& pod, const NodeInfo& node);
// Appends every insufficient resource (fitsRequest) to `out`; true if none.
bool resources_fit(const PodInfo& pod, const NodeInfo& node, std::vector<FailureReason>& out);

// Pre-computed state of InterPodAffinity's filter for one pod (kube-scheduler's PreFilter).
// Topology pairs are keyed as (key id << 32 | value id).
struct InterPodAffinityState {
  bool skip = true;
  std::unordered_map<uint64_t, int64_t> existing_anti_affinity;
  std::unordered_map<uint64_t, int64_t> affinity;
  std::unordered_map<uint64_t, int64_t> anti_affinity;
  bool matches_own_affinity = false;
};
InterPodAffinityState inter_pod_affinity_prefilter(const Cluster& cluster, const PodInfo& pod);
// kSuccess, or the failure with its reason.
FilterCode inter_pod_affinity_filter(const InterPodAffinityState& state, const PodInfo& pod,
                                     const Node& node, Reason* reason);

// Runs the filters in order on one node. On failure appends the reasons to `reasons` and sets
// *failed_plugin to the plugin::* bit of the filter that rejected the node.
FilterCode run_filters(const Cluster& cluster, const PodInfo& pod, const InterPodAffinityState& ipa,
                       const NodeInfo& node, std::vector<FailureReason>& reasons,
                       uint32_t* failed_plugin);

// ---- scores --------------------------------------------------------------------------------

// Per-resource scores of NodeResourcesFit's strategies (requested includes the pod).
int64_t least_requested_score(int64_t requested, int64_t capacity);
int64_t most_requested_score(int64_t requested, int64_t capacity);
// NodeResourcesBalancedAllocation over cpu and memory fractions.
int64_t balanced_resource_score(int64_t cpu_requested, int64_t cpu_allocatable,
                                int64_t mem_requested, int64_t mem_allocatable);
// PreferNoSchedule taints of the node that `prefer_tolerations` do not tolerate.
int64_t count_intolerable_prefer_no_schedule(const Node& node,
                                             const std::vector<Toleration>& prefer_tolerations);
// Sum of the weights of the preferred node affinity terms the node matches.
int64_t node_affinity_preferred_score(const PodInfo& pod, const Node& node,
                                      const Interner& strings);

// InterPodAffinity scoring: per-topology-pair weights from the pod's preferred terms against
// placed pods, and from placed pods' terms against the pod. False when there is nothing to
// score.
struct InterPodAffinityScores {
  std::unordered_map<uint64_t, int64_t> by_pair;
  std::vector<uint32_t> keys;  // topology keys present in by_pair
};
bool inter_pod_affinity_prescore(const Cluster& cluster, const PodInfo& pod,
                                 InterPodAffinityScores& out);
int64_t inter_pod_affinity_score(const InterPodAffinityScores& s, const Node& node);

// helper.DefaultNormalizeScore: scales to 0..100 by the maximum; `reverse` flips.
void default_normalize_score(std::vector<int64_t>& scores, bool reverse);

}  // namespace skiff::scheduler
