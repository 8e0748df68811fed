// Deployment status: the replica counts and the Available, Progressing and ReplicaFailure
// conditions that `kubectl rollout status` and `kubectl wait` read (Kubernetes 1.32
// sync.go calculateStatus, progress.go syncRolloutStatus, deploymentutil's condition helpers).
//
// Functions are pure and thread-safe; statuses are JSON as the API has them.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "controllers/deployment/rollout.h"

namespace skiff::controllers::deployment {

using nlohmann::json;

inline constexpr std::string_view kConditionAvailable = "Available";
inline constexpr std::string_view kConditionProgressing = "Progressing";
inline constexpr std::string_view kConditionReplicaFailure = "ReplicaFailure";

// Reasons of the Progressing condition.
inline constexpr std::string_view kReasonReplicaSetUpdated = "ReplicaSetUpdated";
inline constexpr std::string_view kReasonFailedRSCreate = "ReplicaSetCreateError";
inline constexpr std::string_view kReasonNewRSCreated = "NewReplicaSetCreated";
inline constexpr std::string_view kReasonFoundNewRS = "FoundNewReplicaSet";
inline constexpr std::string_view kReasonNewRSAvailable = "NewReplicaSetAvailable";
inline constexpr std::string_view kReasonTimedOut = "ProgressDeadlineExceeded";
inline constexpr std::string_view kReasonPaused = "DeploymentPaused";
inline constexpr std::string_view kReasonResumed = "DeploymentResumed";
// Reasons of the Available condition.
inline constexpr std::string_view kReasonMinimumReplicasAvailable = "MinimumReplicasAvailable";
inline constexpr std::string_view kReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable";

// calculateStatus: observedGeneration, replicas, updatedReplicas (the new ReplicaSet's
// pods), readyReplicas, availableReplicas, unavailableReplicas (spec total minus available,
// never negative), collisionCount and the conditions of the current status, with Available
// set from whether availableReplicas reaches replicas - maxUnavailable. `all` holds the old
// ReplicaSets and the new one (if any); zero counts are omitted, as the API omits them.
json calculate_status(const json& deployment, const std::vector<ReplicaSetView>& all,
                      const ReplicaSetView* new_rs, TimePoint now);

// syncRolloutStatus: calculate_status plus, when the Deployment has a progress deadline and
// its latest rollout has not completed, the Progressing condition (NewReplicaSetAvailable when
// complete, ReplicaSetUpdated on any progress, ProgressDeadlineExceeded past the deadline),
// and the ReplicaFailure condition of the ReplicaSets (the new one's first). Without a
// deadline there is no Progressing condition.
json rollout_status(const json& deployment, const std::vector<ReplicaSetView>& all,
                    const ReplicaSetView* new_rs, TimePoint now);

// deploymentutil.DeploymentComplete: every replica updated and available, none old, and the
// status is of the current generation.
bool deployment_complete(const json& deployment, const json& status);
// deploymentutil.DeploymentProgressing: more updated, ready or available replicas, or fewer
// old ones, than the Deployment's current status shows.
bool deployment_progressing(const json& deployment, const json& new_status);
// deploymentutil.DeploymentTimedOut: the Progressing condition of new_status has not been
// updated for progressDeadlineSeconds (never after NewReplicaSetAvailable).
bool deployment_timed_out(const json& deployment, const json& new_status, TimePoint now);

// requeueStuckDeployment: when a rollout in progress shows no progress, how long until its
// deadline has passed and it must be looked at again (the time to the deadline plus a
// second); nullopt when there is nothing to wait for (no deadline, complete, or already
// timed out). Unlike Kubernetes, a deadline less than a second away is not polled with
// rate-limited requeues: one requeue a second after it suffices.
std::optional<std::chrono::milliseconds> stuck_requeue_after(const json& deployment,
                                                             const json& new_status, TimePoint now);

// Whether two statuses say the same, ignoring how zero counts and empty lists are written.
bool status_equal(const json& a, const json& b);

}  // namespace skiff::controllers::deployment
