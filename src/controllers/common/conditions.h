// status.conditions of workload objects (Deployment, ReplicaSet, DaemonSet, StatefulSet, Job):
// arrays of {type, status, reason, message, lastTransitionTime[, lastUpdateTime]}, kept with
// the rules the Kubernetes controllers share (deploymentutil.SetDeploymentCondition,
// replicaset.SetCondition, ...).
//
// All functions are pure and thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/time.h"

namespace skiff::controllers::common {

using nlohmann::json;

// The condition of `type` in status.conditions, or null.
const json* find_condition(const json& status, std::string_view type);

// A new condition stamped with `now` as its lastTransitionTime (and lastUpdateTime when
// with_update_time, as Deployment conditions have).
json new_condition(std::string_view type, std::string_view status, std::string_view reason,
                   std::string_view message, TimePoint now, bool with_update_time);

// Puts `condition` into status.conditions, as SetDeploymentCondition does: nothing changes
// when a condition of that type already has the same status and reason; when only the
// status stays the same, the existing lastTransitionTime is kept; the condition replaces the
// old one of its type and goes to the end. Returns true when status changed.
bool set_condition(json& status, json condition);

// Removes the condition of `type`; returns true when there was one. An emptied array is
// removed (conditions are omitempty).
bool remove_condition(json& status, std::string_view type);

}  // namespace skiff::controllers::common
