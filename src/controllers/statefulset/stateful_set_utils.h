// Pods, claims and revisions of a StatefulSet (Kubernetes 1.32
// pkg/controller/statefulset/stateful_set_utils.go): stable names "<set>-<ordinal>", the
// identity a pod carries (hostname, subdomain, pod-name and pod-index labels), the
// PersistentVolumeClaims "<claim>-<set>-<ordinal>" its volumes name, and the revision a pod
// was made from.
//
// All functions are pure and thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "controllers/common/controller_ref.h"

namespace skiff::controllers::statefulset {

using nlohmann::json;

// apps/v1 StatefulSetPodNameLabel and PodIndexLabel.
inline constexpr std::string_view kPodNameLabel = "statefulset.kubernetes.io/pod-name";
inline constexpr std::string_view kPodIndexLabel = "apps.kubernetes.io/pod-index";

// getParentNameAndOrdinal: "web-2" is ("web", 2); a name not ending in "-<digits>" gives
// ("", -1).
std::pair<std::string, int> parent_and_ordinal(std::string_view pod_name);
int ordinal_of(const json& pod);
// getPodName: "<set>-<ordinal>".
std::string pod_name(const json& set, int ordinal);
// isMemberOf: the pod's name makes it one of the set's.
bool is_member_of(const json& set, const json& pod);
// getPersistentVolumeClaimName: "<claim>-<set>-<ordinal>".
std::string claim_name(const json& set, const json& claim_template, int ordinal);

// getPersistentVolumeClaims: the claims of the pod with `ordinal`, one per
// volumeClaimTemplate, in their order, each as {template name, claim}: the template's spec,
// labels (with the set's selector matchLabels) and annotations, named claim_name(), in the
// set's namespace.
std::vector<std::pair<std::string, json>> persistent_volume_claims(const json& set, int ordinal);

// identityMatches: the pod's name, namespace and pod-name / pod-index labels are those of its
// ordinal in the set.
bool identity_matches(const json& set, const json& pod);
// storageMatches: each volumeClaimTemplate is a volume of the pod using its claim.
bool storage_matches(const json& set, const json& pod);
// updateIdentity: sets name, namespace and the pod-name and pod-index labels.
void update_identity(const json& set, json& pod);
// updateStorage: a persistentVolumeClaim volume for each template (replacing a volume of the
// same name), then the pod's other volumes.
void update_storage(const json& set, json& pod);

// newStatefulSetPod: the pod of `ordinal` from the set's template: controller reference,
// name, identity (plus hostname = name and subdomain = spec.serviceName) and storage.
// BadRequest when the template has no labels.
Result<json> new_stateful_set_pod(const json& set, int ordinal,
                                  const common::OwnerReference& ref);

// ApplyRevision: a copy of the set whose template is the one `revision` recorded.
json apply_revision(const json& set, const json& revision);

// getPodRevision: the pod's controller-revision-hash label (the revision's name).
std::string pod_revision(const json& pod);
// setPodRevision.
void set_pod_revision(json& pod, const std::string& revision_name);

}  // namespace skiff::controllers::statefulset
