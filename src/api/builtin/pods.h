// What other layers need to know about Pods beyond their ResourceDef.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace skiff::api {

// The pod's QoS class as Kubernetes computes it from its containers' requests and limits:
// "Guaranteed", "Burstable" or "BestEffort". Thread-safe (pure).
std::string pod_qos_class(const nlohmann::json& pod);

}  // namespace skiff::api
