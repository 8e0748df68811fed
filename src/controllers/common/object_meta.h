// Reading API objects held as JSON, for workload controllers.
//
// Objects come from informer caches and have passed the API server's validation, but these
// readers never assume a field is present or well typed: an absent or mistyped field reads as
// the given default. All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/labels.h"
#include "common/time.h"

namespace skiff::controllers::common {

using nlohmann::json;

// The value at `path` (object members), or null when any step is missing.
const json* find_path(const json& obj, std::initializer_list<std::string_view> path);
// The string at `path`, or `def` when absent or not a string.
std::string string_at(const json& obj, std::initializer_list<std::string_view> path,
                      std::string_view def = "");
// The integer at `path`, or `def` when absent or not an integer.
int64_t int_at(const json& obj, std::initializer_list<std::string_view> path, int64_t def = 0);
// The boolean at `path`, or `def` when absent or not a boolean.
bool bool_at(const json& obj, std::initializer_list<std::string_view> path, bool def = false);

std::string name_of(const json& obj);
std::string namespace_of(const json& obj);
std::string uid_of(const json& obj);
std::string resource_version_of(const json& obj);
int64_t generation_of(const json& obj);
// A core/v1 ObjectReference to `obj` ({apiVersion, kind, namespace, name, uid,
// resourceVersion}), as events' involvedObject: objects from lists need not carry their kind.
json object_reference(const json& obj, std::string_view api_version, std::string_view kind);
// "ns/name" (or "name" for cluster-scoped objects), as cache.MetaNamespaceKeyFunc.
std::string key_of(const json& obj);
// True when metadata.deletionTimestamp is set.
bool being_deleted(const json& obj);

// A string map (metadata.labels, metadata.annotations, matchLabels) as Labels; entries whose
// values are not strings are skipped. Null or absent: empty.
Labels string_map(const json* map);
Labels labels_of(const json& obj);
Labels annotations_of(const json& obj);
// metadata.annotations[key], if present and a string.
std::optional<std::string> annotation(const json& obj, std::string_view key);

// A metav1.Time field as a Timestamp; nullopt when absent, null or unparsable.
std::optional<Timestamp> time_at(const json& obj, std::initializer_list<std::string_view> path);
// metadata.creationTimestamp; the zero Timestamp when absent.
Timestamp creation_timestamp(const json& obj);
// A TimePoint as a Timestamp, and back (Timestamps outside TimePoint's range are clamped).
Timestamp to_timestamp(TimePoint t);
TimePoint to_time_point(Timestamp t);
// metav1.Time text for `t` ("2024-01-02T03:04:05Z").
std::string format_time(TimePoint t);

// controller.ReplicaSetsByCreationTimestamp and friends: older first, name as the tie
// breaker (creation times have whole seconds).
bool created_before(const json& a, const json& b);

// strconv.ParseInt(s, 10, 64).
std::optional<int64_t> parse_int64(std::string_view s);

}  // namespace skiff::controllers::common
