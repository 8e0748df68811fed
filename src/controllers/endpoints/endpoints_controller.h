// The Endpoints controller (Kubernetes 1.32 pkg/controller/endpoint): keeps the core/v1
// Endpoints of each Service with a selector listing the pods it selects.
//
// reconcile("ns/name"):
//  - the Service is gone: its Endpoints are deleted (also Endpoints left over without a
//    Service when the controller starts);
//  - the Service has no selector (the `kubernetes` Service, Services backed by hand-made
//    Endpoints) or is of type ExternalName: nothing is done;
//  - otherwise the Endpoints get one address per selected pod that has an IP of the
//    Service's family and is not terminal nor (unless publishNotReadyAddresses) being
//    deleted: {ip, nodeName, targetRef, hostname when the pod names the Service as its
//    subdomain}, under `addresses` when the pod is Ready (or publishNotReadyAddresses) and
//    `notReadyAddresses` otherwise, for every Service port whose targetPort resolves on the
//    pod (a number, or a container port name with the same protocol). Subsets are packed as
//    RepackSubsets does (addresses sharing the same ports together), sorted, and cut to
//    kMaxCapacity addresses (annotation endpoints.kubernetes.io/over-capacity: truncated).
//    The labels are the Service's, plus service.kubernetes.io/headless for a Service without
//    a cluster IP. Nothing is written when nothing changed.
// Pod events queue the Services whose selector matches the pod (before and after a label
// change), and only when something endpoints show changed.
//
// Thread-safe: reconcile may run on several workers at once (for different Services).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/client.h"
#include "controllers/framework.h"

namespace skiff::controllers::endpoints {

using nlohmann::json;

// maxCapacity: the most addresses one Endpoints object carries.
inline constexpr size_t kMaxCapacity = 1000;
inline constexpr const char* kOverCapacityAnnotation = "endpoints.kubernetes.io/over-capacity";
// The annotation of Endpoints used as a leader-election lock, which are not cleaned up.
inline constexpr const char* kLeaderAnnotation = "control-plane.alpha.kubernetes.io/leader";

// The subsets of the Endpoints of `service` with `pods` (the pods its selector matches),
// packed and sorted; an empty array when no pod qualifies.
json endpoint_subsets(const json& service, const std::vector<client::ObjectPtr>& pods);

// truncateEndpoints: cuts `subsets` to kMaxCapacity addresses (ready ones kept first, each
// subset keeping its share); returns true when it cut.
bool truncate_subsets(json& subsets);

class EndpointsController : public Controller {
 public:
  explicit EndpointsController(ControllerContext& ctx);
  ~EndpointsController() override;

  std::string name() const override { return "endpoints"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::endpoints
