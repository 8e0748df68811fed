// Pod templates of workload controllers: the pod-template-hash label that tells the
// ReplicaSets (and ControllerRevisions) of one owner apart, and template equality that
// ignores it.
//
// Templates are compared and hashed semantically, as apiequality.Semantic does: a null value,
// an empty object and an empty array are the same as an absent field, so the way a client or
// the server wrote a template (`labels: {}`, `args: null`) does not make it a new template.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace skiff::controllers::common {

using nlohmann::json;

// apps/v1 DefaultDeploymentUniqueLabelKey.
inline constexpr std::string_view kPodTemplateHashLabel = "pod-template-hash";

// `value` with null members, empty objects and empty arrays removed at every depth (array
// elements that become empty are kept, so positions do not shift). An object or array that
// becomes empty at the top level is returned empty.
json semantic_normalize(const json& value);

// FNV-1a, 32 bits.
uint32_t fnv32a(std::string_view data, uint32_t hash = 2166136261u);

// rand.SafeEncodeString: each byte mapped onto the alphabet "bcdfghjklmnpqrstvwxz2456789",
// so that the result is a valid label value and name suffix that cannot spell words.
std::string safe_encode_string(std::string_view s);

// controller.ComputeHash: FNV-32a of the template (its canonical JSON, normalized as above),
// followed by the collision count as four little-endian bytes when present; the decimal
// value safe-encoded. Stable across runs and processes; at most 10 characters of digits and
// consonants.
std::string compute_hash(const json& pod_template, std::optional<int32_t> collision_count);

// deploymentutil.EqualIgnoreHash: the two templates are semantically equal once the
// pod-template-hash label is removed from both.
bool equal_ignore_hash(const json& template1, const json& template2);

}  // namespace skiff::controllers::common
