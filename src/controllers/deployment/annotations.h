// The annotations a Deployment keeps on its ReplicaSets (and on itself), as
// deploymentutil does: the revision (and the revisions a ReplicaSet had before a rollback),
// the desired and maximum replicas at the last scale, and the Deployment's own annotations,
// copied down so that a rollback can restore them.
//
// Functions change the JSON objects they are given; they are thread-safe on distinct objects.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace skiff::controllers::deployment {

using nlohmann::json;

// deploymentutil's limit on the revision-history annotation.
inline constexpr size_t kMaxRevisionHistoryChars = 2000;

// Annotations that belong to the Deployment/ReplicaSet relation itself and are never copied
// between the two (revision, revision-history, desired/max replicas, the deprecated
// rollback-to, kubectl's last-applied-configuration).
bool skip_copy_annotation(std::string_view key);

// SetReplicasAnnotations: desired-replicas and max-replicas on `rs`; true when changed.
bool set_replicas_annotations(json& rs, int32_t desired, int32_t max);
// ReplicasAnnotationsNeedUpdate.
bool replicas_annotations_need_update(const json& rs, int32_t desired, int32_t max);

// SetNewReplicaSetAnnotations: copies the Deployment's annotations onto the new ReplicaSet,
// raises its revision to `new_revision` (recording a revision it had before in
// revision-history, capped at kMaxRevisionHistoryChars by dropping the oldest) and, for a
// ReplicaSet about to be created (!exists), sets the replicas annotations. True when `rs`
// changed.
bool set_new_replica_set_annotations(const json& deployment, json& rs,
                                     std::string_view new_revision, bool exists, int32_t desired,
                                     int32_t max,
                                     size_t max_history_chars = kMaxRevisionHistoryChars);

// SetDeploymentAnnotationsTo (rollback): the Deployment keeps only its own relation
// annotations and takes every other annotation from the ReplicaSet rolled back to.
void set_deployment_annotations_to(json& deployment, const json& rs);

// metadata.annotations of `obj`, created as an empty object when absent.
json& annotations_of(json& obj);

}  // namespace skiff::controllers::deployment
