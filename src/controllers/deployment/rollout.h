// The arithmetic of Deployment rollouts, as functions over plain data (Kubernetes 1.32:
// pkg/controller/deployment/{rolling,recreate,sync}.go and util/deployment_util.go).
//
// The controller reads a Deployment and its ReplicaSets into DeploymentView and
// ReplicaSetView values, asks these functions what to do (which ReplicaSet to scale to what
// size, which old ReplicaSets to delete), and carries the answers out through the API.
//
// Two places are deliberately more careful than Kubernetes, so that a rolling update keeps
// its bounds even while ReplicaSet controllers lag behind their specs:
//  - surge: a ReplicaSet counts as max(spec.replicas, status.replicas) pods when deciding how
//    far the new ReplicaSet may grow (a scaled-down ReplicaSet whose pods are not yet deleted
//    still has them);
//  - availability: a ReplicaSet counts as min(status.availableReplicas, spec.replicas)
//    available pods when deciding how far old ReplicaSets may shrink (a scaled-down
//    ReplicaSet whose status predates the scale-down will lose those pods).
// Both reduce to Kubernetes' numbers once every ReplicaSet's status has caught up.
//
// All functions are pure and thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace skiff::controllers::deployment {

using nlohmann::json;

inline constexpr std::string_view kRevisionAnnotation = "deployment.kubernetes.io/revision";
inline constexpr std::string_view kRevisionHistoryAnnotation =
    "deployment.kubernetes.io/revision-history";
inline constexpr std::string_view kDesiredReplicasAnnotation =
    "deployment.kubernetes.io/desired-replicas";
inline constexpr std::string_view kMaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas";
inline constexpr std::string_view kDeprecatedRollbackToAnnotation =
    "deprecated.deployment.rollback.to";
inline constexpr std::string_view kLastAppliedConfigAnnotation =
    "kubectl.kubernetes.io/last-applied-configuration";

// intstr.IntOrString as it appears in JSON (maxSurge, maxUnavailable).
struct IntOrString {
  bool is_string = false;
  int64_t int_value = 0;
  std::string string_value;

  static IntOrString of_int(int64_t v) { return IntOrString{false, v, ""}; }
  static IntOrString of_string(std::string s) { return IntOrString{true, 0, std::move(s)}; }
  // A JSON number or string; anything else (absent, null) gives `def`.
  static IntOrString from_json(const json* v, IntOrString def);
};

// intstr.GetScaledValueFromIntOrPercent: an int as is; "N%" of `total`, rounded up or down.
// BadRequest for a string that is not a percentage ("invalid type: string is not a
// percentage") or whose number does not parse ("invalid value \"x%\": ...").
Result<int32_t> scaled_value(const IntOrString& v, int32_t total, bool round_up);

enum class StrategyType { kRollingUpdate, kRecreate, kUnknown };

// What the rollout arithmetic needs of a Deployment.
struct DeploymentView {
  std::string name;
  int64_t generation = 0;
  int32_t replicas = 1;
  StrategyType strategy = StrategyType::kRollingUpdate;
  IntOrString max_surge = IntOrString::of_string("25%");
  IntOrString max_unavailable = IntOrString::of_string("25%");
  std::optional<int32_t> revision_history_limit;     // nullopt (or INT32_MAX): keep every one
  std::optional<int32_t> progress_deadline_seconds;  // nullopt (or INT32_MAX): no deadline
  int32_t min_ready_seconds = 0;
  bool paused = false;
  int32_t status_replicas = 0;  // status.replicas

  static DeploymentView from_json(const json& deployment);
};

// What the rollout arithmetic needs of a ReplicaSet.
struct ReplicaSetView {
  std::string name;
  std::string uid;
  Timestamp created;
  int32_t replicas = 0;  // spec.replicas
  int32_t status_replicas = 0;
  int32_t ready_replicas = 0;
  int32_t available_replicas = 0;
  int64_t generation = 0;
  int64_t observed_generation = 0;
  bool deleting = false;
  int64_t revision = 0;                     // the revision annotation; 0 when absent or invalid
  bool revision_invalid = false;            // the annotation is present but not an integer
  std::optional<int32_t> desired_replicas;  // the desired-replicas annotation
  std::optional<int32_t> max_replicas;      // the max-replicas annotation
  json replica_failure;                     // the ReplicaFailure condition of its status, or null

  static ReplicaSetView from_json(const json& rs);

  // Pods the ReplicaSet may have now: see the header comment.
  int32_t pods_upper_bound() const { return std::max(replicas, status_replicas); }
  // Available pods it will keep: see the header comment.
  int32_t available_lower_bound() const { return std::min(available_replicas, replicas); }
};

// deploymentutil.ResolveFenceposts: maxSurge rounded up and maxUnavailable rounded down
// against `desired`; when both come out 0, maxUnavailable is 1.
struct Fenceposts {
  int32_t max_surge = 0;
  int32_t max_unavailable = 0;
};
Result<Fenceposts> resolve_fenceposts(const IntOrString& max_surge,
                                      const IntOrString& max_unavailable, int32_t desired);

// deploymentutil.MaxSurge / MaxUnavailable / MinAvailable: 0 for Recreate (and for bad
// values); maxUnavailable is at most the replicas, and 0 for 0 replicas.
int32_t max_surge(const DeploymentView& d);
int32_t max_unavailable(const DeploymentView& d);
int32_t min_available(const DeploymentView& d);

// Sums over ReplicaSets of spec.replicas, status.replicas, status.readyReplicas and
// status.availableReplicas.
int32_t replica_count(const std::vector<ReplicaSetView>& rss);
int32_t actual_replica_count(const std::vector<ReplicaSetView>& rss);
int32_t ready_replica_count(const std::vector<ReplicaSetView>& rss);
int32_t available_replica_count(const std::vector<ReplicaSetView>& rss);

// controller.FilterActiveReplicaSets: those with spec.replicas > 0.
std::vector<ReplicaSetView> active_replica_sets(const std::vector<ReplicaSetView>& rss);
// ReplicaSetsByCreationTimestamp: older first, then by name.
bool created_before(const ReplicaSetView& a, const ReplicaSetView& b);

// One write the controller is to make: ReplicaSet `name` from `from` to `to` replicas
// (from == to: only its replica annotations may need updating). `operation` ("up", "down"
// or "") is what the ScalingReplicaSet event says.
struct ScaleStep {
  std::string name;
  int32_t from = 0;
  int32_t to = 0;
  std::string operation;
  friend bool operator==(const ScaleStep&, const ScaleStep&) = default;
};

// deploymentutil.NewRSNewReplicas: how big the new ReplicaSet may be now. RollingUpdate:
// grow toward spec.replicas while all ReplicaSets together stay within replicas + maxSurge;
// Recreate: spec.replicas. BadRequest for a bad maxSurge or an unknown strategy.
Result<int32_t> new_rs_new_replicas(const DeploymentView& d, const std::vector<ReplicaSetView>& all,
                                    const ReplicaSetView& new_rs);

// rolling.go reconcileNewReplicaSet: the step for the new ReplicaSet (scale down to
// spec.replicas if above, otherwise up as new_rs_new_replicas allows), or nullopt when it
// already has the right size. `all` includes new_rs.
Result<std::optional<ScaleStep>> plan_new_replica_set(const DeploymentView& d,
                                                      const std::vector<ReplicaSetView>& all,
                                                      const ReplicaSetView& new_rs);

// rolling.go reconcileOldReplicaSets: the steps that shrink old ReplicaSets without going
// below minAvailable: first unhealthy replicas (oldest ReplicaSet first, up to what the
// unavailability budget allows), then available ones. A ReplicaSet may appear in both
// phases; steps are to be applied in order.
std::vector<ScaleStep> plan_old_replica_sets(const DeploymentView& d,
                                             const std::vector<ReplicaSetView>& old_rss,
                                             const ReplicaSetView& new_rs);

// recreate.go scaleDownOldReplicaSetsForRecreate: every active old ReplicaSet to 0.
std::vector<ScaleStep> plan_recreate_scale_down(const std::vector<ReplicaSetView>& old_rss);

// deploymentutil.FindActiveOrLatest: the only active ReplicaSet; with none active, the new
// one or else the newest old one; null when several are active (or there are none).
const ReplicaSetView* find_active_or_latest(const ReplicaSetView* new_rs,
                                            const std::vector<ReplicaSetView>& old_rss);
// deploymentutil.IsSaturated: rs has spec.replicas, the desired-replicas annotation and
// available replicas all equal to the Deployment's replicas.
bool is_saturated(const DeploymentView& d, const ReplicaSetView* rs);
// sync.go isScalingEvent: an active ReplicaSet's desired-replicas annotation differs from
// the Deployment's replicas (someone scaled the Deployment).
bool is_scaling_event(const DeploymentView& d, const ReplicaSetView* new_rs,
                      const std::vector<ReplicaSetView>& old_rss);

// deploymentutil.GetReplicaSetProportion: how many replicas of `to_add` (of which `added`
// are already given out) ReplicaSet `rs` gets, in proportion to its size before the scale.
int32_t replica_set_proportion(const DeploymentView& d, const ReplicaSetView& rs, int32_t to_add,
                               int32_t added);

// sync.go scale: the steps for a scaling event (or a paused Deployment). One active
// ReplicaSet (or none: the newest) takes spec.replicas; a saturated new ReplicaSet sends old
// ones to 0; otherwise, for RollingUpdate, the difference between replicas + maxSurge and
// the current total is spread over the active ReplicaSets in proportion to their size,
// leftovers to the largest (one step per active ReplicaSet, annotation-only steps included).
std::vector<ScaleStep> plan_scale(const DeploymentView& d, const ReplicaSetView* new_rs,
                                  const std::vector<ReplicaSetView>& old_rss);

// sync.go cleanupDeployment: the old ReplicaSets beyond revisionHistoryLimit to delete,
// lowest revision first, skipping any that still have pods, are being scaled or deleted.
std::vector<std::string> plan_cleanup(const DeploymentView& d,
                                      const std::vector<ReplicaSetView>& old_rss);

// deploymentutil.MaxRevision and LastRevision (the second highest): 0 when there is none.
int64_t max_revision(const std::vector<ReplicaSetView>& rss);
int64_t last_revision(const std::vector<ReplicaSetView>& rss);

// deploymentutil.HasProgressDeadline / HasRevisionHistoryLimit.
bool has_progress_deadline(const DeploymentView& d);
bool has_revision_history_limit(const DeploymentView& d);

}  // namespace skiff::controllers::deployment
