// The node lifecycle controller (Kubernetes 1.32 pkg/controller/nodelifecycle, with the
// taint-based eviction of pkg/controller/tainteviction), registered as "node_lifecycle".
//
// reconcile("<node name>"):
//  1. health: a node's kubelet is alive while its Lease in kube-node-lease is renewed or the
//     lastHeartbeatTime of its Ready condition changes. The controller notes, by its own
//     clock, when it last saw either change (the probe time; the first sighting counts, so
//     a restarted controller gives every node a full grace period). A node not heard from
//     for ControllerOptions::node_monitor_grace_period (1.5 times that for a node that never
//     posted a Ready condition, counted from its creation) gets Ready, MemoryPressure,
//     DiskPressure and PIDPressure set to Unknown (reason NodeStatusUnknown, "Kubelet
//     stopped posting node status.") through the status subresource, and the Event
//     NodeNotReady when it was Ready until then;
//  2. taints: NoSchedule taints follow the conditions (not-ready for Ready=False,
//     unreachable for Ready=Unknown, memory/disk/pid-pressure, network-unavailable,
//     unschedulable for spec.unschedulable) and the NoExecute taints not-ready / unreachable
//     follow Ready (stamped with timeAdded); all are removed when the condition clears. The
//     taints are written with the resourceVersion read, so a concurrent change is a Conflict
//     (and a retry), never a lost update;
//  3. while Ready is Unknown, the Ready condition of every pod on the node is set to False
//     (Event NodeNotReady on each pod), as MarkPodsNotReady;
//  4. taint-based eviction: a pod on a node with NoExecute taints it does not tolerate is
//     deleted at once; one that tolerates them for a while is deleted once the shortest
//     tolerationSeconds has passed since the taint was added (pods without a toleration for
//     not-ready / unreachable tolerate them for ControllerOptions::pod_eviction_timeout, the
//     default the API server's DefaultTolerationSeconds admission gives); pods tolerating
//     them for ever stay. An evicted pod gets the DisruptionTarget condition
//     (DeletionByTaintManager) and a graceful delete; Events TaintManagerEviction "Marking
//     for deletion Pod ns/name" (and "Cancelling deletion of Pod ns/name" when the taints go
//     before the time is up);
//  5. the node is looked at again when its grace period or the next eviction is due.
// Zone-based rate limiting of evictions and the full-disruption mode of Kubernetes are not
// implemented: every unreachable node is tainted and evicted on its own schedule.
//
// All times come from ControllerContext::clock. Thread-safe: reconcile may run on several
// workers at once (for different nodes).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "controllers/framework.h"

namespace skiff::controllers::nodelifecycle {

inline constexpr char kNodeLeaseNamespace[] = "kube-node-lease";
// The pod informer index by spec.nodeName (shared with other users of the informer).
inline constexpr char kPodNodeNameIndex[] = "spec.nodeName";

class NodeLifecycleController : public Controller {
 public:
  explicit NodeLifecycleController(ControllerContext& ctx);
  ~NodeLifecycleController() override;

  std::string name() const override { return "node_lifecycle"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;
  int workers() const override { return 4; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::nodelifecycle
