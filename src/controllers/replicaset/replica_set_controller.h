// The ReplicaSet controller (Kubernetes 1.32 pkg/controller/replicaset): keeps
// spec.replicas pods running for each ReplicaSet.
//
// reconcile("ns/name"):
//  1. claims the active pods of the namespace: adopts orphans its selector matches (adding a
//     controller reference with blockOwnerDeletion), releases owned pods it no longer
//     matches;
//  2. unless its expectations are still pending (an earlier create or delete not yet seen by
//     the pod informer), creates the missing pods in slow-start batches (1, 2, 4, ...; at most
//     kBurstReplicas per pass) with generateName "<rs>-", or deletes the surplus, the pods
//     Kubernetes would pick first (unscheduled, pending, not ready, doubled up on a node,
//     ready for a shorter time, more restarts, newer);
//  3. writes status through the status subresource: replicas, fullyLabeledReplicas,
//     readyReplicas, availableReplicas (ready for minReadySeconds), observedGeneration and
//     the ReplicaFailure condition (FailedCreate / FailedDelete) while writes fail.
// Events (source replicaset-controller): SuccessfulCreate "Created pod: x", FailedCreate
// "Error creating: ...", SuccessfulDelete "Deleted pod: x", FailedDelete "Error deleting: ...".
//
// Thread-safe: reconcile may run on several workers at once (for different keys).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/informer.h"
#include "common/status.h"
#include "common/time.h"
#include "controllers/common/expectations.h"
#include "controllers/framework.h"

namespace skiff::controllers::replicaset {

using nlohmann::json;

// replicaset.BurstReplicas: at most this many creations or deletions per reconcile.
inline constexpr int kBurstReplicas = 500;

// calculateStatus: the status a ReplicaSet should have with `pods` (its claimed active
// pods) and the outcome of the last create/delete round. Zero counts other than replicas are
// omitted; observedGeneration is left as it was (update_status sets it).
json calculate_status(const json& rs, const std::vector<client::ObjectPtr>& pods,
                      const Status& manage_error, TimePoint now);

// Whether `new_status` differs from the ReplicaSet's status in a way worth a write (counts,
// conditions, or an observedGeneration behind metadata.generation).
bool status_needs_update(const json& rs, const json& new_status);

class ReplicaSetController : public Controller {
 public:
  explicit ReplicaSetController(ControllerContext& ctx);
  ~ReplicaSetController() override;

  std::string name() const override { return "replicaset"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

  // For tests: what the controller still waits to observe.
  const common::ControllerExpectations& expectations() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::replicaset
