// The kubelet's summary API (GET /stats/summary, kubelet/pkg/apis/stats/v1alpha1): CPU and
// memory of the node and of each running pod and container, which the API server's
// metrics.k8s.io group (and so `kubectl top`) serves.
//
// The node's figures come from /proc (stat, meminfo, uptime); containers' from their cgroups
// (cgroup v1 or v2) through the runtime; a pod's are its pod cgroup's when its containers run
// in one (pod_cgroups.h), else the sums of its containers'. Containers
// are matched to pods by their runtime id ("<pod uid>_<container>_<attempt>"), so only pods
// run by this node's agent appear.
//
// usageNanoCores is a rate: each call compares the cumulative CPU time with the sample of an
// earlier call at least min_rate_window older (kept per container and for the node). The
// first time a container (or the node) is seen, the rate is its average since it started
// (since boot for the node), so the very first summary already carries useful numbers.
//
// Thread-safety: thread-safe; calls are serialized internally. A call blocks while it lists
// the runtime (runc), so callers on an event loop run it on a worker thread.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/time.h"

namespace skiff::agent {

namespace runtime {
class ContainerRuntime;
}

// The pod a summary entry is about (its podRef).
struct StatsPodRef {
  std::string name;
  std::string ns;
  std::string uid;
};

// podRefs of core/v1 Pod objects (metadata.name/namespace/uid); objects without a uid are
// skipped.
std::vector<StatsPodRef> stats_pod_refs(
    const std::vector<std::shared_ptr<const nlohmann::json>>& pods);

struct StatsSummaryOptions {
  std::string node_name;  // node.nodeName
  std::string proc_root = "/proc";
  // Samples closer together than this do not replace the stored one, so that back-to-back
  // calls do not compute rates over a few milliseconds.
  std::chrono::milliseconds min_rate_window{std::chrono::seconds(1)};
  // The time source; nullptr: Clock::real(). Must outlive the provider.
  const Clock* clock = nullptr;
};

class StatsSummaryProvider {
 public:
  // `runtime` must outlive the provider.
  StatsSummaryProvider(runtime::ContainerRuntime& runtime, StatsSummaryOptions options);
  ~StatsSummaryProvider();
  StatsSummaryProvider(const StatsSummaryProvider&) = delete;
  StatsSummaryProvider& operator=(const StatsSummaryProvider&) = delete;

  // The summary, as the kubelet serves it:
  //   {"node": {"nodeName", "startTime",
  //             "cpu": {"time", "usageNanoCores", "usageCoreNanoSeconds"},
  //             "memory": {"time", "availableBytes", "usageBytes", "workingSetBytes"}},
  //    "pods": [{"podRef": {"name", "namespace", "uid"}, "startTime",
  //              "containers": [{"name", "startTime", "cpu": {...}, "memory": {...}}],
  //              "cpu": {...}, "memory": {...}}]}
  // Only pods among `pods` with at least one running container appear; a container that
  // restarted reports its newest running attempt. Missing /proc files give zeros for the node
  // rather than an error (the summary is best effort, as the kubelet's).
  nlohmann::json summary(const std::vector<StatsPodRef>& pods);
  // summary() serialized, for the HTTP handler.
  std::string summary_json(const std::vector<StatsPodRef>& pods);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::agent
