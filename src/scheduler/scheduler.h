// The skiff scheduler: assigns pending pods to nodes, as kube-scheduler does.
//
// Pods it schedules: spec.schedulerName names one of its profiles ("default-scheduler", and
// "skiff-binpack" for bin packing; see algorithm.h), spec.nodeName is empty, spec.schedulingGates
// is empty, and the pod is neither terminating nor finished.
//
// How it works:
//  - Informers on nodes, pods and namespaces feed events; their handlers turn each object into
//    the compact structs of cluster.h on the informer's thread and post them to the scheduler.
//  - One scheduling thread owns the Cluster (nodes with their usage, placed pods) and the
//    SchedulingQueue; it applies the posted events incrementally, pops the next pod, runs
//    schedule_one, and on success assumes the pod on the node (the node's usage includes it
//    from then on) and hands the binding to a pool of binder threads, so that several
//    bindings are in flight while the next pods are scheduled. A binding that fails is
//    forgotten (the node's usage drops it) and the pod retries after a back-off.
//  - A pod that fits nowhere gets PodScheduled=False, reason Unschedulable, with
//    kube-scheduler's message (status patch), and a FailedScheduling Warning Event; it waits
//    until a cluster event that may help (a node added or changed, a pod removed, ...).
//    A pod bound gets a Scheduled Normal Event "Successfully assigned ns/pod to node".
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/informer.h"
#include "scheduler/algorithm.h"

namespace skiff::scheduler {

// Receives the Events the scheduler emits; the signature of controllers::EventRecorder::record,
// so a recorder plugs in as
//   o.events = [&rec](const auto& obj, const auto& type, const auto& reason, const auto& msg) {
//     rec.record(obj, type, reason, msg);
//   };
// involved_object is the pod's ObjectReference (apiVersion, kind, namespace, name, uid,
// resourceVersion). Called from the scheduler's worker threads; must not block for long.
using EventSink = std::function<void(const nlohmann::json& involved_object, const std::string& type,
                                     const std::string& reason, const std::string& message)>;

struct SchedulerOptions {
  // The strategy of the "default-scheduler" profile (ignored when `profiles` is given).
  ScoringStrategy default_strategy = ScoringStrategy::kLeastAllocated;
  // The profiles to run; empty: default_profiles(default_strategy).
  std::vector<Profile> profiles;
  // Bindings and status writes in flight at once. Each waits for the store's fsync, which
  // the store shares among the writes committed together, so more in flight means more
  // bindings per fsync.
  int bind_workers = 64;
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{10000};
  std::chrono::milliseconds max_unschedulable{std::chrono::minutes(5)};
  // Where Events go; null: none are emitted.
  EventSink events;
  // Seed for breaking score ties; 0 picks one at random.
  uint64_t seed = 0;
};

struct SchedulerStats {
  uint64_t attempts = 0;       // scheduling decisions made
  uint64_t scheduled = 0;      // bindings that succeeded
  uint64_t unschedulable = 0;  // decisions that found no node
  uint64_t errors = 0;         // decisions that could not be made (no nodes, unreadable pod)
  uint64_t bind_failures = 0;
  size_t active = 0;              // pods ready to be tried
  size_t backoff = 0;             // pods waiting out a back-off
  size_t unschedulable_pods = 0;  // pods waiting for a cluster event
  size_t binds_in_flight = 0;
  size_t nodes = 0;        // present nodes
  size_t placed_pods = 0;  // bound or assumed pods accounted on nodes
  bool synced = false;     // informers have delivered their first lists
};

class Scheduler {
 public:
  // `client` and `informers` must outlive the Scheduler.
  Scheduler(client::Client& client, client::InformerFactory& informers,
            SchedulerOptions options = {});
  ~Scheduler();  // stops
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Registers informer handlers, starts the node, pod and namespace informers, the scheduling
  // thread and the binder threads. Scheduling begins once the informers have synced.
  // Idempotent.
  void start();
  // Stops scheduling and waits for the threads; bindings not yet sent are dropped (the pods
  // stay pending for the next scheduler). Idempotent; the Scheduler cannot be restarted.
  void stop();
  SchedulerStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace skiff::scheduler
