// The node IPAM controller (Kubernetes 1.32 pkg/controller/nodeipam with the RangeAllocator),
// registered as "node_ipam": gives every node a pod range, spec.podCIDR and spec.podCIDRs,
// cut from ControllerOptions::cluster_cidr into /node_cidr_mask_size blocks (10.42.0.0/16
// into /24s by default, as K3s).
//
// reconcile("<node name>"):
//  - a node that has a range keeps it; the controller marks it used (so a range a node got
//    from elsewhere, or before a restart, is never handed out twice);
//  - a node without one gets the next free range, written with the resourceVersion read
//    (so a concurrent writer causes a Conflict and a retry, never two ranges);
//  - a deleted node's range is released, and nodes still waiting for one are queued again;
//  - when every range is taken the node gets a Warning Event CIDRNotAvailable ("Node x
//    status is now: CIDRNotAvailable") and is retried with back-off.
// The allocation lives in memory and is rebuilt from the nodes' ranges when the controller
// starts (its first reconcile sees the synced informer cache), so restarts lose nothing.
// Only IPv4 cluster CIDRs are supported; with an unusable cluster CIDR every reconcile fails
// with BadRequest (logged) and nothing is assigned.
//
// Thread-safe: reconcile may run on several workers at once (for different nodes).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "controllers/framework.h"

namespace skiff::controllers::nodeipam {

class NodeIpamController : public Controller {
 public:
  explicit NodeIpamController(ControllerContext& ctx);
  ~NodeIpamController() override;

  std::string name() const override { return "node_ipam"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::nodeipam
