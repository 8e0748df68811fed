// The Job controller (Kubernetes 1.32 pkg/controller/job): runs a Job's pods to completion.
//
// reconcile("ns/name"):
//  1. claims the Job's pods (its selector; finished and terminating ones included) and counts
//     active, ready, terminating, and newly finished pods: pods carry the finalizer
//     batch.kubernetes.io/job-tracking from creation until the controller has counted them;
//  2. decides whether the Job has finished: succeeded pods reaching spec.completions (or, with
//     no completions, any succeeded pod once none is active); failed pods beyond
//     spec.backoffLimit (with restartPolicy OnFailure, container restarts of running pods
//     count too); spec.activeDeadlineSeconds passed since status.startTime. A failing Job
//     first gets the interim FailureTarget condition (reason BackoffLimitExceeded or
//     DeadlineExceeded) and its active pods are deleted; a succeeding one gets
//     SuccessCriteriaMet (reason CompletionsReached). The terminal Failed / Complete
//     condition (and completionTime) follow once no pod is terminating or uncounted;
//  3. otherwise, unless suspended, creates pods up to min(parallelism, remaining completions)
//     (slow-start batches, generateName "<job>-"; Indexed Jobs create the lowest pending
//     indexes, with generateName "<job>-<index>-", hostname "<job>-<index>", the
//     batch.kubernetes.io/job-completion-index annotation and label and the
//     JOB_COMPLETION_INDEX environment variable), or deletes surplus pods. After pod failures
//     new pods wait for an exponential back-off (pod_failure_backoff doubling per failure since
//     the last success, at most max_pod_failure_backoff) counted from the last failure. A
//     suspended Job's active pods are deleted and it gets the Suspended condition;
//  4. writes status: active, ready, terminating, succeeded, failed, completedIndexes,
//     startTime (reset on resume), completionTime, conditions and uncountedTerminatedPods.
//     Finished pods are first recorded by uid in uncountedTerminatedPods, then their finalizer
//     is removed, then they move into the succeeded/failed counters, so that no pod is counted
//     twice or lost across restarts.
// Pods left with the tracking finalizer by a deleted or finished Job are released.
// Events (source job-controller): SuccessfulCreate, FailedCreate, SuccessfulDelete,
// FailedDelete, Suspended, Resumed, Completed, BackoffLimitExceeded, DeadlineExceeded,
// TooManySucceededPods, UnknownCompletionMode.
//
// Thread-safe: reconcile may run on several workers at once (for different keys).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "controllers/framework.h"

namespace skiff::controllers::job {

inline constexpr const char* kJobTrackingFinalizer = "batch.kubernetes.io/job-tracking";
// MaxUncountedPods: at most this many pods are added to uncountedTerminatedPods per sync.
inline constexpr int kMaxUncountedPods = 500;
// MaxPodCreateDeletePerSync.
inline constexpr int kMaxPodCreateDeletePerSync = 500;

struct JobControllerOptions {
  // The delay before replacing a failed pod after the first failure; doubles with each
  // further failure since the last success.
  std::chrono::milliseconds pod_failure_backoff{std::chrono::seconds(10)};
  std::chrono::milliseconds max_pod_failure_backoff{std::chrono::minutes(6)};
};

// The back-off before creating pods again, as getRemainingTimeWithFailureCount: none for
// no failures, else base * 2^(failures-1) (at most max) minus the time since last_failure.
std::chrono::nanoseconds pod_failure_backoff_remaining(int failures, TimePoint last_failure,
                                                       TimePoint now,
                                                       std::chrono::milliseconds base,
                                                       std::chrono::milliseconds max);

class JobController : public Controller {
 public:
  explicit JobController(ControllerContext& ctx, JobControllerOptions options = {});
  ~JobController() override;

  std::string name() const override { return "job"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::job
