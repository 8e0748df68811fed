// The namespace controller (Kubernetes 1.32 pkg/controller/namespace): empties a namespace
// that is being deleted, then releases it.
//
// A namespace marked for deletion (deletionTimestamp set, phase Terminating) is queued.
// reconcile(name), on a fresh read of the namespace:
//  1. makes sure status.phase is Terminating;
//  2. unless its spec.finalizers no longer hold `kubernetes` (already released), deletes its
//     content through the API: every namespaced resource discovery reports as deletable (the
//     preferred version of each group), pods first (nothing else until they are gone), each
//     with one DELETE of the collection (or, where that is not served, of each object),
//     propagationPolicy Background, then lists what remains;
//  3. sets the status conditions Kubernetes sets (NamespaceDeletionDiscoveryFailure,
//     NamespaceDeletionGroupVersionParsingFailure, NamespaceDeletionContentFailure,
//     NamespaceContentRemaining, NamespaceFinalizersRemaining: True with what failed or
//     remains, False with the "all done" reasons otherwise), writing them when they changed;
//  4. when content remains, looks again after estimate/2 + 1 seconds, the estimate being the
//     longest termination grace period of the remaining pods (until it has passed since the
//     deletion) or, for objects held by finalizers, kFinalizerEstimateSeconds; content that
//     should be gone but is not is an error (retried with back-off);
//  5. once nothing is left, removes `kubernetes` from spec.finalizers with PUT
//     /api/v1/namespaces/<name>/finalize; the API server deletes the namespace when no
//     finalizer remains.
//
// Thread-safe: reconcile may run on several workers at once (for different namespaces).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "controllers/framework.h"

namespace skiff::controllers::namespaces {

using nlohmann::json;

inline constexpr std::string_view kKubernetesFinalizer = "kubernetes";
// finalizerEstimateSeconds: how long objects held by finalizers are given before a new look.
inline constexpr int64_t kFinalizerEstimateSeconds = 15;

// What one pass found, for the status conditions.
struct DeletionReport {
  Status discovery_error;                       // OK when discovery read everything
  std::vector<std::string> content_errors;      // deletions or lists that failed
  std::map<std::string, int> remaining;         // "resource.group" -> objects left
  std::map<std::string, int> finalizers;        // finalizer -> objects it holds
};

// namespaceConditionUpdater.Update: puts the five deletion conditions for `report` into
// `status` (a Namespace status object), keeping lastTransitionTime unless a condition's status
// changes. Returns true when anything changed.
bool update_deletion_conditions(json& status, const DeletionReport& report, TimePoint now);

class NamespaceController : public Controller {
 public:
  explicit NamespaceController(ControllerContext& ctx);
  ~NamespaceController() override;

  std::string name() const override { return "namespace"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::namespaces
