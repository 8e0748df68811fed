// What the Endpoints and EndpointSlice controllers share (Kubernetes 1.32
// pkg/controller/util/endpoint, staging endpointslice/util, api/v1/pod): which pods back a
// Service, on which port and address, and which Services a pod event concerns.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/informer.h"
#include "common/labels.h"
#include "common/status.h"

namespace skiff::controllers::endpoints {

using nlohmann::json;

// v1.IsHeadlessService: the label both controllers put on the objects of a headless Service.
inline constexpr const char* kHeadlessServiceLabel = "service.kubernetes.io/headless";

// The Service's spec.selector as a selector; nullopt for a Service without one (absent or
// empty), whose endpoints are left to whoever manages them.
std::optional<LabelSelector> service_selector(const json& service);

// podutil.FindPort: the pod's port for a Service port: targetPort as a number (the Service
// port itself when targetPort is absent), or by name among the ports of the pod's containers
// and restartable (sidecar) init containers with the same protocol. NotFound when no
// container port has that name.
Result<int32_t> find_port(const json& pod, const json& service_port);

// endpointutil.ShouldPodBeInEndpoints: the pod has an IP and is not terminal (Failed, or
// Succeeded, by its restart policy); a pod being deleted counts only with include_terminating.
bool should_pod_be_in_endpoints(const json& pod, bool include_terminating);

// "IPv4" or "IPv6": the Service's first ipFamily, else the family of its clusterIP, else IPv4.
std::string service_ip_family(const json& service);
// The pod's IP of `family` (status.podIPs, else status.podIP); "" when it has none.
std::string pod_ip(const json& pod, const std::string& family);

// endpointutil.ShouldSetHostname: the pod names a hostname and the Service as its subdomain.
bool should_set_hostname(const json& pod, const json& service);

// Whether the Service has a cluster IP ("None" and "" are headless).
bool service_ip_set(const json& service);

// The v1 ObjectReference endpoints use for a pod: {kind, namespace, name, uid}.
json pod_reference(const json& pod);

// The pods of namespace `ns` in `pods` (an informer of pods) that `selector` matches.
std::vector<client::ObjectPtr> selected_pods(const client::Informer& pods, const std::string& ns,
                                             const LabelSelector& selector);

// The keys ("ns/name") of the Services in `services` (an informer of Services) whose
// selector matches the pod's labels (GetPodServiceMemberships).
std::vector<std::string> pod_service_keys(const client::Informer& services, const json& pod);

// podEndpointsChanged: whether an update of a pod changes what endpoints show (its labels
// are compared separately by the caller): IPs, readiness, deletion, node, hostname,
// subdomain, phase or container ports.
bool pod_endpoints_changed(const json& old_pod, const json& new_pod);
bool pod_labels_changed(const json& old_pod, const json& new_pod);

// The API server refused to create in a namespace that is being terminated.
bool namespace_terminating(const Status& s);

}  // namespace skiff::controllers::endpoints
