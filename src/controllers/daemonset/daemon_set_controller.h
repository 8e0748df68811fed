// The DaemonSet controller (Kubernetes 1.32 pkg/controller/daemon): one daemon pod on every
// node that should run it.
//
// reconcile("ns/name"):
//  1. keeps the history: finds (or creates) the ControllerRevision holding the current
//     template, named "<ds>-<hash>" and labelled controller-revision-hash=<hash>; a template
//     seen before (a rollback) gets its old revision back with the next revision number;
//  2. claims the DaemonSet's pods (adopting orphans its selector matches, releasing owned
//     pods it no longer matches) and maps them to nodes: spec.nodeName, or for unbound pods
//     the node their affinity names;
//  3. unless earlier creations or deletions are still to be observed: creates a pod for each
//     node that should run one and has none (nodeSelector, required node affinity and taints
//     decide, with the automatic DaemonSet tolerations), deletes pods from nodes that should
//     not keep them, surplus pods, failed pods (with back-off per node) and succeeded ones.
//     Pods are created unbound, with required node affinity matchFields metadata.name=<node>,
//     for the scheduler to bind;
//  4. RollingUpdate: replaces out-of-date pods within maxUnavailable (deleting old pods first)
//     or, with maxSurge, starts new pods beside old ones and deletes an old pod once its
//     replacement is available; OnDelete: only pods deleted by the user are replaced;
//  5. prunes revisions beyond revisionHistoryLimit that no pod uses;
//  6. writes status: desiredNumberScheduled, currentNumberScheduled, numberMisscheduled,
//     numberReady, numberAvailable, numberUnavailable, updatedNumberScheduled and
//     observedGeneration.
// Events (source daemonset-controller): SuccessfulCreate "Created pod: x", FailedCreate
// "Error creating: ...", SuccessfulDelete "Deleted pod: x", FailedDelete "Error deleting:
// ...", FailedDaemonPod "Found failed daemon pod ns/x on node n, will try to kill it",
// SucceededDaemonPod, SelectingAll.
//
// Thread-safe: reconcile may run on several workers at once (for different keys).
#pragma once

#include <memory>
#include <string>

#include "controllers/framework.h"

namespace skiff::controllers::daemonset {

// BurstReplicas of the DaemonSet controller: at most this many creations or deletions per
// reconcile.
inline constexpr int kBurstReplicas = 250;

class DaemonSetController : public Controller {
 public:
  explicit DaemonSetController(ControllerContext& ctx);
  ~DaemonSetController() override;

  std::string name() const override { return "daemonset"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::daemonset
