// The EndpointSlice controller (Kubernetes 1.32 pkg/controller/endpointslice and the
// staging endpointslice reconciler): keeps discovery.k8s.io/v1 EndpointSlices for each
// Service with a selector.
//
// reconcile("ns/name"):
//  - the Service is gone: the slices this controller made for it are deleted (the garbage
//    collector would too: they are owned by the Service);
//  - the Service has no selector, is of type ExternalName or is being deleted: nothing is
//    done;
//  - otherwise, for each address type of the Service (its ipFamilies; IPv4 by default), the
//    selected pods that have an IP of that family and are not terminal (terminating pods
//    included) become endpoints: {addresses [ip], conditions {ready, serving, terminating},
//    nodeName, zone (the node's topology.kubernetes.io/zone), hostname, targetRef}, where
//    serving is the pod's readiness, terminating its deletion and ready = serving and not
//    terminating (always true with publishNotReadyAddresses). A pod on a node that does not
//    exist is left out (unless publishNotReadyAddresses) and the Service is retried.
//    Endpoints are grouped by their ports (each Service port whose targetPort resolves on the
//    pod, by number or container port name); each group fills slices of at most
//    kMaxEndpointsPerSlice endpoints. Existing slices are kept and changed as little as
//    possible: endpoints stay where they are, removed ones go, new ones fill the slices that
//    change anyway, then slices with room, then new slices (generateName "<service>-"); a
//    slice left empty is deleted, except that a Service without endpoints keeps one empty
//    placeholder slice per address type.
// Every slice carries the labels kubernetes.io/service-name and
// endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io (plus the Service's
// own labels and service.kubernetes.io/headless for a headless Service) and a controller
// reference to the Service. Slices managed by others are never touched.
//
// Before acting on a Service, the controller checks that its slice informer has seen every
// slice write it made for that Service (as the EndpointSliceTracker does), so that a lagging
// cache cannot make it create a slice twice; if not, the Service is retried shortly.
//
// Thread-safe: reconcile may run on several workers at once (for different Services).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/client.h"
#include "controllers/framework.h"

namespace skiff::controllers::endpointslice {

using nlohmann::json;

inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
inline constexpr const char* kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
inline constexpr const char* kControllerName = "endpointslice-controller.k8s.io";
inline constexpr const char* kZoneLabel = "topology.kubernetes.io/zone";
// maxEndpointsPerSlice (--max-endpoints-per-slice).
inline constexpr size_t kMaxEndpointsPerSlice = 100;

// The ports (discovery.k8s.io/v1 EndpointPort) `pod` offers for `service`: one per Service
// port whose targetPort resolves on the pod, in the Service's order.
json endpoint_ports(const json& service, const json& pod);

// The labels a slice of `service` carries (setEndpointSliceLabels).
json slice_labels(const json& service);

class EndpointSliceController : public Controller {
 public:
  explicit EndpointSliceController(ControllerContext& ctx);
  ~EndpointSliceController() override;

  std::string name() const override { return "endpointslice"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::endpointslice
