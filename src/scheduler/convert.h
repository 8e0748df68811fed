// Extraction of the scheduler's compact structs from Node, Pod and Namespace objects.
//
// These run on informer threads, once per object version, so that the scheduling thread never
// reads JSON. Input is an object as the API server returns it; anything malformed is tolerated
// (a pod whose spec cannot be read is kept with PodInfo::invalid set, so that the scheduler can
// report it rather than drop it). Thread-safe (the Interner is).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "scheduler/cluster.h"

namespace skiff::scheduler {

inline constexpr char kTaintNotReady[] = "node.kubernetes.io/not-ready";
inline constexpr char kTaintUnreachable[] = "node.kubernetes.io/unreachable";
inline constexpr char kTaintUnschedulable[] = "node.kubernetes.io/unschedulable";

// As kube-scheduler's defaults for containers without requests (scoring only).
inline constexpr int64_t kDefaultMilliCpuRequest = 100;
inline constexpr int64_t kDefaultMemoryRequest = 200 * 1024 * 1024;

std::shared_ptr<const Node> parse_node(const nlohmann::json& obj, Interner& strings);
std::shared_ptr<const PodInfo> parse_pod(const nlohmann::json& obj, Interner& strings);
LabelSet parse_labels(const nlohmann::json& metadata_labels, Interner& strings);

}  // namespace skiff::scheduler
