// One scheduling decision: filter the nodes, score the feasible ones, pick the best — the pure
// core of the scheduler, usable without any API (tests, benchmarks).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "scheduler/cluster.h"
#include "scheduler/plugins.h"

namespace skiff::scheduler {

// How NodeResourcesFit scores a node's cpu and memory after placing the pod.
enum class ScoringStrategy {
  // Prefer the emptiest nodes: spreads load (kube-scheduler's default).
  kLeastAllocated,
  // Prefer the fullest nodes that still fit: bin packing, so that fewer nodes are busy and
  // the rest can be scaled away.
  kMostAllocated,
};

const char* scoring_strategy_name(ScoringStrategy s);

// Score plugin weights, kube-scheduler's defaults. 0 disables a plugin.
struct ScoreWeights {
  int64_t resources_fit = 1;
  int64_t balanced_allocation = 1;
  int64_t taint_toleration = 3;
  int64_t node_affinity = 2;
  int64_t inter_pod_affinity = 2;
};

// A scheduling profile: the pods whose spec.schedulerName is `scheduler_name` are scheduled
// with it.
struct Profile {
  std::string scheduler_name = "default-scheduler";
  ScoringStrategy strategy = ScoringStrategy::kLeastAllocated;
  ScoreWeights weights;
  // Share of nodes to find feasible before scoring (percentageOfNodesToScore); 0 is
  // Kubernetes' adaptive default (50% minus 1% per 125 nodes, at least 5%, at least 100 nodes).
  int percentage_of_nodes_to_score = 0;
};

inline constexpr char kDefaultSchedulerName[] = "default-scheduler";
inline constexpr char kBinPackingSchedulerName[] = "skiff-binpack";

// The profiles skiff runs unless told otherwise:
//   "default-scheduler"  with `default_strategy` (LeastAllocated unless chosen otherwise, as
//                        in Kubernetes, so that manifests behave as users expect);
//   "skiff-binpack"      MostAllocated, without BalancedAllocation (which would pull pods
//                        towards half-empty nodes): packs pods onto as few nodes as possible,
//                        which is how skiff saves cost.
std::vector<Profile> default_profiles(ScoringStrategy default_strategy);

// numFeasibleNodesToFind: how many feasible nodes to look for among `num_nodes`.
size_t num_feasible_nodes_to_find(int percentage, size_t num_nodes);

struct ScheduleResult {
  std::string node_name;
  size_t evaluated_nodes = 0;  // nodes filtered
  size_t feasible_nodes = 0;   // of which passed
};

// Why a pod could not be scheduled.
struct Diagnosis {
  // "Unschedulable" when no node fits; "SchedulerError" when the pod could not be evaluated
  // (no nodes at all, an unreadable spec). The PodScheduled condition's reason.
  std::string reason;
  // kube-scheduler's message, e.g. "0/3 nodes are available: 1 Insufficient cpu, 2 node(s)
  // had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes
  // are available: 1 No preemption victims found for incoming pod, 2 Preemption is not
  // helpful for scheduling.."
  std::string message;
  // The plugin::* filters that rejected some node: the cluster events that may help.
  uint32_t plugins = 0;
};

// What carries over between decisions: the rotating start of the node scan (so that sampling
// visits every node in turn), a random source for breaking ties, and reused buffers.
// Not thread-safe; one per scheduling thread.
class ScheduleState {
 public:
  explicit ScheduleState(uint64_t seed = 0x5eed5c4ed) : rng_(seed) {}

 private:
  friend Result<ScheduleResult> schedule_one(const Cluster&, const PodInfo&, const Profile&,
                                             ScheduleState&, Diagnosis*);
  size_t next_start_index_ = 0;
  std::mt19937_64 rng_;
  std::vector<uint32_t> feasible_;  // indexes into the present nodes
  std::vector<FailureReason> reasons_;
  std::vector<int64_t> total_;
  std::vector<int64_t> plugin_scores_;
  InterPodAffinityScores ipa_scores_;
};

// Chooses a node for `pod`. Returns the node, or:
//   Unavailable  no node fits (diagnosis->reason "Unschedulable" with kube-scheduler's
//                message), or there are no nodes ("SchedulerError", "no nodes available to
//                schedule pods");
//   Invalid      the pod's spec could not be read (PodInfo::invalid).
// The message of the Status is the diagnosis message. Does not change the cluster.
Result<ScheduleResult> schedule_one(const Cluster& cluster, const PodInfo& pod,
                                    const Profile& profile, ScheduleState& state,
                                    Diagnosis* diagnosis = nullptr);

}  // namespace skiff::scheduler
