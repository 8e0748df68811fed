// The Deployment controller (Kubernetes 1.32 pkg/controller/deployment): rolls a
// Deployment's pod template out through ReplicaSets.
//
// reconcile("ns/name"):
//  - claims the namespace's ReplicaSets (adopting matching orphans, releasing ones the
//    selector no longer matches);
//  - finds the new ReplicaSet (the one whose template equals the Deployment's, ignoring the
//    pod-template-hash label) and creates it when the rollout needs it, named
//    "<deployment>-<hash>" with the hash as a label on its template and selector;
//  - keeps the revision annotations: the new ReplicaSet's revision is one above the highest
//    old one, and the Deployment carries it too; desired-replicas and max-replicas record the
//    size the Deployment had when it last scaled each ReplicaSet;
//  - paused: only scales (proportionally) and cleans up; a scaling event (spec.replicas
//    changed) likewise; otherwise RollingUpdate (grow the new ReplicaSet within
//    replicas + maxSurge, shrink old ones while keeping replicas - maxUnavailable available)
//    or Recreate (old ReplicaSets to 0, wait until their pods are gone, then the new one);
//  - honours the deprecated rollback annotation (deprecated.deployment.rollback.to), though
//    `kubectl rollout undo` rolls back client-side by patching the template;
//  - deletes old ReplicaSets beyond revisionHistoryLimit once the rollout is complete;
//  - writes status through the status subresource: observedGeneration, replicas,
//    updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas, collisionCount,
//    and the Available, Progressing and ReplicaFailure conditions; a rollout that makes no
//    progress for progressDeadlineSeconds gets Progressing=False ProgressDeadlineExceeded.
// Events (source deployment-controller): ScalingReplicaSet "Scaled up replica set x from 0
// to 3" / "Scaled down ...", ReplicaSetCreateError, SelectingAll, DeploymentRollback....
//
// Thread-safe: reconcile may run on several workers at once (for different keys).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "controllers/framework.h"

namespace skiff::controllers::deployment {

class DeploymentController : public Controller {
 public:
  explicit DeploymentController(ControllerContext& ctx);
  ~DeploymentController() override;

  std::string name() const override { return "deployment"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::deployment
