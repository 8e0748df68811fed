// The TTL-after-finished controller (Kubernetes 1.32 pkg/controller/ttlafterfinished): deletes
// a finished Job spec.ttlSecondsAfterFinished seconds after it finished (the
// lastTransitionTime of its Complete or Failed condition).
//
// reconcile("ns/name"): nothing for a Job without a TTL, still running or being deleted; a
// Job whose TTL has not expired is looked at again when it will have. Before deleting, the
// Job is read again from the API (the cached TTL may be stale) and the delete carries its uid
// as a precondition, so a re-created Job of the same name is never removed. Jobs are deleted
// with propagationPolicy Background: the garbage collector removes their pods.
//
// Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/time.h"
#include "controllers/framework.h"

namespace skiff::controllers::job {

// timeLeft: how long until the finished Job may be deleted (zero or negative once expired);
// nullopt when the Job has no TTL, has not finished, or is being deleted.
std::optional<std::chrono::nanoseconds> ttl_time_left(const nlohmann::json& job, TimePoint now);

class TtlAfterFinishedController : public Controller {
 public:
  explicit TtlAfterFinishedController(ControllerContext& ctx);
  ~TtlAfterFinishedController() override;

  std::string name() const override { return "ttl_after_finished"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::job
