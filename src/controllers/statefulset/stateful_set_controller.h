// The StatefulSet controller (Kubernetes 1.32 pkg/controller/statefulset): spec.replicas
// pods with stable identities "<set>-0" .. "<set>-N-1", each with its own
// PersistentVolumeClaims.
//
// reconcile("ns/name"):
//  1. claims the pods whose names make them members of the set (adopting orphans its selector
//     matches) and the ControllerRevisions it owns or that are orphans matching its selector;
//  2. finds the update revision (the template as it is now: an existing revision with the
//     same template, renumbered if it is not the newest, or a new one
//     "<set>-<hash of its data>") and the current one (status.currentRevision);
//  3. creates missing ordinals below spec.replicas (their claims first, named
//     "<claim template>-<set>-<ordinal>" and kept when pods go), recreates failed pods,
//     restores a pod's identity labels, and deletes ordinals at or above spec.replicas,
//     highest first. OrderedReady does one step at a time: no pod is created or deleted
//     while a lower (or, scaling down, another) pod is not Running and Ready; Parallel does
//     not wait;
//  4. RollingUpdate: once every ordinal is healthy, deletes the highest-ordinal pod at or
//     above rollingUpdate.partition not at the update revision, one at a time, waiting for
//     its replacement to be Running and Ready; OnDelete leaves that to the user;
//  5. writes status: replicas, readyReplicas, availableReplicas, currentReplicas,
//     updatedReplicas, currentRevision, updateRevision (the current revision becomes the
//     update revision when a rolling update is complete), collisionCount, observedGeneration;
//  6. prunes revisions beyond revisionHistoryLimit that no pod, nor the status, uses.
// Pods get hostname "<pod name>", subdomain spec.serviceName, labels
// statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index and
// controller-revision-hash=<revision name>.
// Events (source statefulset-controller): SuccessfulCreate "create Pod x in StatefulSet s
// successful" / "create Claim c Pod x in StatefulSet s success", FailedCreate, SuccessfulDelete
// "delete Pod x in StatefulSet s successful", FailedDelete, SuccessfulUpdate,
// RecreatingFailedPod, RecreatingTerminatedPod.
//
// Thread-safe: reconcile may run on several workers at once (for different keys).
#pragma once

#include <memory>
#include <string>

#include "controllers/framework.h"

namespace skiff::controllers::statefulset {

class StatefulSetController : public Controller {
 public:
  explicit StatefulSetController(ControllerContext& ctx);
  ~StatefulSetController() override;

  std::string name() const override { return "statefulset"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::statefulset
