// ControllerRevisions: the history the DaemonSet and StatefulSet controllers keep of their pod
// templates (Kubernetes 1.32 pkg/controller/history), and from which `kubectl rollout
// history` and `kubectl rollout undo` read.
//
// A revision's data is the strategic merge patch {"spec":{"template":{..., "$patch":
// "replace"}}} that restores its owner's template; kubectl applies it as is to roll back.
//
// Functions are thread-safe; those taking a Client write through it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "common/status.h"
#include "controllers/common/controller_ref.h"

namespace skiff::controllers::common {

using nlohmann::json;

// apps/v1 ControllerRevisionHashLabelKey (DefaultDaemonSetUniqueLabelKey too).
inline constexpr std::string_view kControllerRevisionHashLabel = "controller-revision-hash";

// getPatch of the DaemonSet and StatefulSet controllers: {"spec":{"template": T}} where T is
// `owner`'s spec.template with "$patch": "replace" added.
json template_patch(const json& owner);

// history.HashControllerRevision: FNV-1 (32 bits) of the data's canonical JSON (keys sorted),
// then the collision count in decimal when present; the decimal sum safe-encoded.
std::string hash_controller_revision(const json& data, std::optional<int32_t> collision_count);

// history.ControllerRevisionName: "<prefix>-<hash>", the prefix cut to 223 characters.
std::string controller_revision_name(std::string_view prefix, std::string_view hash);

// history.NewControllerRevision: an apps/v1 ControllerRevision in `owner`'s namespace, owned
// by `ref`, labelled with `labels` plus controller-revision-hash=<hash>, annotated with the
// owner's annotations, named controller_revision_name(owner name, hash).
json new_controller_revision(const json& owner, const OwnerReference& ref, const Labels& labels,
                             const json& data, int64_t revision,
                             std::optional<int32_t> collision_count);

// The .revision of a ControllerRevision (0 when absent).
int64_t revision_number(const json& revision);

// history.SortControllerRevisions: by revision, then creation time, then name.
void sort_controller_revisions(std::vector<client::ObjectPtr>& revisions);

// Whether two revisions hold the same data (compared semantically: absent, null and empty
// are the same), after their hash labels, when both carry one, are equal.
bool equal_revision(const json& a, const json& b);

// history.CreateControllerRevision: creates `revision` (from new_controller_revision, with
// its name recomputed from *collision_count). When the name is taken by a revision with the
// same data, returns that one; by another, counts a collision in *collision_count and
// retries under the next name. Errors: the server's.
Result<client::ObjectPtr> create_controller_revision(client::Client& client, const json& owner,
                                                     json revision, int32_t* collision_count);

// history.UpdateControllerRevision: sets .revision to `number`, re-reading and retrying on a
// Conflict. Errors: the server's.
Result<client::ObjectPtr> set_revision_number(client::Client& client, const json& revision,
                                              int64_t number);

}  // namespace skiff::controllers::common
