#include "controllers/deployment/progress.h"

#include <string>

#include "controllers/common/conditions.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_template_hash.h"

namespace skiff::controllers::deployment {
namespace {

namespace cc = ::skiff::controllers::common;

void put_count(json& status, const char* field, int64_t value) {
  if (value != 0) {
    status[field] = value;
  } else {
    status.erase(field);
  }
}

json status_of(const json& deployment) {
  const json* s = cc::find_path(deployment, {"status"});
  return s != nullptr && s->is_object() ? *s : json::object();
}

int64_t count(const json& status, const char* field) { return cc::int_at(status, {field}); }

json without_zero_counts(const json& status) {
  json out = cc::semantic_normalize(status);
  if (!out.is_object()) return out;
  for (auto it = out.begin(); it != out.end();) {
    if (it.value().is_number_integer() && it.value().get<int64_t>() == 0) {
      it = out.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

// ReplicaSetToDeploymentCondition.
json to_deployment_condition(const json& rs_condition) {
  json c = rs_condition;
  if (const json* t = cc::find_path(rs_condition, {"lastTransitionTime"})) {
    c["lastUpdateTime"] = *t;
  }
  return c;
}

}  // namespace

json calculate_status(const json& deployment, const std::vector<ReplicaSetView>& all,
                      const ReplicaSetView* new_rs, TimePoint now) {
  DeploymentView d = DeploymentView::from_json(deployment);
  int32_t available = available_replica_count(all);
  int32_t unavailable = std::max(0, replica_count(all) - available);
  json old = status_of(deployment);

  json status = json::object();
  put_count(status, "observedGeneration", d.generation);
  put_count(status, "replicas", actual_replica_count(all));
  put_count(status, "updatedReplicas", new_rs != nullptr ? new_rs->status_replicas : 0);
  put_count(status, "readyReplicas", ready_replica_count(all));
  put_count(status, "availableReplicas", available);
  put_count(status, "unavailableReplicas", unavailable);
  if (old.contains("collisionCount")) status["collisionCount"] = old["collisionCount"];
  if (old.contains("conditions") && old["conditions"].is_array() && !old["conditions"].empty()) {
    status["conditions"] = old["conditions"];
  }
  if (available >= d.replicas - max_unavailable(d)) {
    cc::set_condition(
        status, cc::new_condition(kConditionAvailable, "True", kReasonMinimumReplicasAvailable,
                                  "Deployment has minimum availability.", now, true));
  } else {
    cc::set_condition(
        status, cc::new_condition(kConditionAvailable, "False", kReasonMinimumReplicasUnavailable,
                                  "Deployment does not have minimum availability.", now, true));
  }
  return status;
}

json rollout_status(const json& deployment, const std::vector<ReplicaSetView>& all,
                    const ReplicaSetView* new_rs, TimePoint now) {
  DeploymentView d = DeploymentView::from_json(deployment);
  json status = calculate_status(deployment, all, new_rs, now);
  if (!has_progress_deadline(d)) cc::remove_condition(status, kConditionProgressing);

  json old = status_of(deployment);
  const json* current = cc::find_condition(old, kConditionProgressing);
  // A resync of a finished rollout (one active ReplicaSet) estimates no progress.
  bool complete_rollout = count(status, "replicas") == count(status, "updatedReplicas") &&
                          current != nullptr &&
                          cc::string_at(*current, {"reason"}) == kReasonNewRSAvailable;
  if (has_progress_deadline(d) && !complete_rollout) {
    if (deployment_complete(deployment, status)) {
      std::string msg = new_rs != nullptr
                            ? "ReplicaSet \"" + new_rs->name + "\" has successfully progressed."
                            : "Deployment \"" + d.name + "\" has successfully progressed.";
      cc::set_condition(status, cc::new_condition(kConditionProgressing, "True",
                                                  kReasonNewRSAvailable, msg, now, true));
    } else if (deployment_progressing(deployment, status)) {
      std::string msg = new_rs != nullptr ? "ReplicaSet \"" + new_rs->name + "\" is progressing."
                                          : "Deployment \"" + d.name + "\" is progressing.";
      json condition = cc::new_condition(kConditionProgressing, "True", kReasonReplicaSetUpdated,
                                         msg, now, true);
      // Progress refreshes lastUpdateTime even when the reason stays the same, which
      // set_condition alone would not do.
      if (current != nullptr) {
        if (cc::string_at(*current, {"status"}) == "True") {
          if (const json* t = cc::find_path(*current, {"lastTransitionTime"})) {
            condition["lastTransitionTime"] = *t;
          }
        }
        cc::remove_condition(status, kConditionProgressing);
      }
      cc::set_condition(status, condition);
    } else if (deployment_timed_out(deployment, status, now)) {
      std::string msg = new_rs != nullptr
                            ? "ReplicaSet \"" + new_rs->name + "\" has timed out progressing."
                            : "Deployment \"" + d.name + "\" has timed out progressing.";
      cc::set_condition(status, cc::new_condition(kConditionProgressing, "False", kReasonTimedOut,
                                                  msg, now, true));
    }
  }

  // The ReplicaFailure condition of the ReplicaSets (the new one's first) carries over.
  json failure;
  if (new_rs != nullptr && !new_rs->replica_failure.is_null()) {
    failure = new_rs->replica_failure;
  } else {
    for (const auto& rs : all) {
      if (!rs.replica_failure.is_null()) {
        failure = rs.replica_failure;
        break;
      }
    }
  }
  if (!failure.is_null()) {
    cc::set_condition(status, to_deployment_condition(failure));
  } else {
    cc::remove_condition(status, kConditionReplicaFailure);
  }
  return status;
}

bool deployment_complete(const json& deployment, const json& status) {
  int64_t replicas = cc::int_at(deployment, {"spec", "replicas"}, 1);
  return count(status, "updatedReplicas") == replicas && count(status, "replicas") == replicas &&
         count(status, "availableReplicas") == replicas &&
         count(status, "observedGeneration") >= cc::generation_of(deployment);
}

bool deployment_progressing(const json& deployment, const json& new_status) {
  json old = status_of(deployment);
  int64_t old_old = count(old, "replicas") - count(old, "updatedReplicas");
  int64_t new_old = count(new_status, "replicas") - count(new_status, "updatedReplicas");
  return count(new_status, "updatedReplicas") > count(old, "updatedReplicas") ||
         new_old < old_old || count(new_status, "readyReplicas") > count(old, "readyReplicas") ||
         count(new_status, "availableReplicas") > count(old, "availableReplicas");
}

bool deployment_timed_out(const json& deployment, const json& new_status, TimePoint now) {
  DeploymentView d = DeploymentView::from_json(deployment);
  if (!has_progress_deadline(d)) return false;
  const json* condition = cc::find_condition(new_status, kConditionProgressing);
  if (condition == nullptr) return false;
  std::string reason = cc::string_at(*condition, {"reason"});
  // After a completed rollout there is nothing to time out until the next one starts.
  if (reason == kReasonNewRSAvailable) return false;
  if (reason == kReasonTimedOut) return true;
  Timestamp from = cc::time_at(*condition, {"lastUpdateTime"}).value_or(Timestamp{});
  return cc::to_time_point(from) + std::chrono::seconds(*d.progress_deadline_seconds) < now;
}

std::optional<std::chrono::milliseconds> stuck_requeue_after(const json& deployment,
                                                             const json& new_status,
                                                             TimePoint now) {
  DeploymentView d = DeploymentView::from_json(deployment);
  json old = status_of(deployment);
  const json* current = cc::find_condition(old, kConditionProgressing);
  if (!has_progress_deadline(d) || current == nullptr) return std::nullopt;
  if (deployment_complete(deployment, new_status) ||
      cc::string_at(*current, {"reason"}) == kReasonTimedOut) {
    return std::nullopt;
  }
  Timestamp last = cc::time_at(*current, {"lastUpdateTime"}).value_or(Timestamp{});
  auto deadline = cc::to_time_point(last) + std::chrono::seconds(*d.progress_deadline_seconds);
  auto after = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  if (after < std::chrono::milliseconds(0)) after = std::chrono::milliseconds(0);
  // A second more, so that the deadline has surely passed when the check runs (times are
  // written in whole seconds).
  return after + std::chrono::seconds(1);
}

bool status_equal(const json& a, const json& b) {
  return without_zero_counts(a) == without_zero_counts(b);
}

}  // namespace skiff::controllers::deployment
