// The controller framework: informer → work queue → idempotent reconcile(key).
//
// Each controller lives in its own folder under src/controllers/<name>/ and registers itself
// once with SKIFF_REGISTER_CONTROLLER. The ControllerManager runs every registered controller
// that is enabled, each with its own queue and worker threads, while it holds the leader
// Lease (kube-system/skiff-controller-manager), so that only one server runs them when
// several share a store.
//
// A controller's event handlers only enqueue keys. reconcile(key) reads the informer caches,
// makes the world match the spec through the API, writes status with observedGeneration, and
// is safe to run again at any time. A non-OK result requeues the key with per-key exponential
// back-off; OK forgets the back-off.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/informer.h"
#include "common/status.h"
#include "common/time.h"

namespace skiff::controllers {

// A de-duplicating, rate-limited queue of keys, as client-go's workqueue: a key queued
// several times before a worker takes it is processed once; a key being processed is not
// handed to a second worker (it is re-queued when done() if it was added meanwhile).
// Delayed keys wait in a min-heap serviced by one timer thread, started on the first delayed
// add. Thread-safe.
class WorkQueue {
 public:
  explicit WorkQueue(std::string name);
  ~WorkQueue();  // shuts down, then joins the timer thread
  // Queues key unless it is already queued; a key being processed is queued again by done().
  // Ignored after shutdown().
  void add(const std::string& key);
  // add(key) once delay has passed (at once for delay <= 0). A key already waiting keeps the
  // earlier of its two times. Ignored after shutdown().
  void add_after(const std::string& key, std::chrono::milliseconds delay);
  // Per-key exponential back-off: add_after(key, backoff_delay(requeues(key))), then counts
  // one more requeue. 5 ms doubling up to 1000 s, as client-go's default.
  void add_rate_limited(const std::string& key);
  void forget(const std::string& key);  // resets the key's back-off
  int requeues(const std::string& key) const;
  // Blocks for the next key and marks it as being processed until done(key); false once
  // shut down (at once, even if keys are still queued).
  bool get(std::string* key);
  void done(const std::string& key);
  // Wakes every blocked get() (which return false) and drops keys still waiting.
  void shutdown();
  bool shutting_down() const;
  size_t size() const;  // keys ready for get(), not counting delayed ones
  const std::string& name() const { return name_; }

  // The delay add_rate_limited uses for a key requeued `requeues` times so far:
  // 5 ms * 2^requeues, at most 1000 s.
  static std::chrono::milliseconds backoff_delay(int requeues);

  struct Impl;

 private:
  std::string name_;
  std::unique_ptr<Impl> impl_;
};

// Records Kubernetes Events (what `kubectl describe` shows), aggregating repeats of the same
// event into one object with a count, as client-go's recorder does. Writes happen on a
// background thread (started by the first record()); record() never blocks. Thread-safe.
//
// An event is a core/v1 Event named "<object name>.<hex UnixNano>" in the object's namespace
// ("default" for cluster-scoped objects), with involvedObject, reason, message, type,
// source {component, host}, firstTimestamp, lastTimestamp and count. A repeat of the same
// (object, type, reason, message) within kAggregationWindow of the previous one patches that
// Event's count and lastTimestamp instead of creating a new one (and creates it again if it
// was deleted meanwhile). Transient write errors are retried a few times; other errors are
// logged and the event is dropped.
class EventRecorder {
 public:
  // Events waiting to be written; record() drops events beyond this.
  static constexpr size_t kQueueCapacity = 1000;
  static constexpr std::chrono::minutes kAggregationWindow{10};

  EventRecorder(client::Client& client, std::string component, std::string host = "");
  ~EventRecorder();  // events not yet written are dropped
  // involved_object: the object itself (kind, apiVersion and metadata are read from it) or
  // an ObjectReference {kind, namespace, name, uid, apiVersion, resourceVersion, fieldPath}.
  // type: "Normal" or "Warning" (other types are dropped); reason: CamelCase
  // ("ScalingReplicaSet").
  void record(const nlohmann::json& involved_object, const std::string& type,
              const std::string& reason, const std::string& message);
  void flush();              // waits until every recorded event has been written (tests)
  uint64_t dropped() const;  // events dropped because the queue was full

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct ControllerOptions {
  // Node lifecycle: a node whose Lease is older than this is NotReady.
  std::chrono::seconds node_monitor_grace_period{40};
  // Pods on a NotReady/unreachable node are evicted after this (default toleration).
  std::chrono::seconds pod_eviction_timeout{300};
  std::string cluster_cidr = "10.42.0.0/16";
  int node_cidr_mask_size = 24;
  std::string service_cidr = "10.43.0.0/16";
};

// What a controller gets to work with. All members outlive the controller. `events` records
// with source.component "<registered name, '_' as '-'>-controller" ("deployment-controller").
struct ControllerContext {
  client::Client& client;
  client::InformerFactory& informers;
  EventRecorder& events;
  const Clock& clock;
  ControllerOptions options;
};

class Controller {
 public:
  virtual ~Controller() = default;
  virtual std::string name() const = 0;
  // Registers informer handlers (which enqueue keys) and indexes; called once, before the
  // informers start.
  virtual void setup(WorkQueue& queue) = 0;
  // Makes the world match the desired state of `key`. Idempotent.
  virtual Status reconcile(const std::string& key) = 0;
  virtual int workers() const { return 2; }
};

using ControllerFactory = std::function<std::unique_ptr<Controller>(ControllerContext& ctx)>;

// Adds a controller to the process-wide list (SKIFF_REGISTER_CONTROLLER does it before main).
// False (and the first registration kept) if the name is taken, or empty, or the factory is.
bool register_controller(const std::string& name, ControllerFactory factory);
// The registered names, sorted.
std::vector<std::string> registered_controllers();
// The factory registered under name; an empty function if there is none.
ControllerFactory controller_factory(const std::string& name);

// A registration made by SKIFF_REGISTER_CONTROLLER: a static object that links itself into a
// list when the program starts. Nothing else runs then (no allocation, no strings, no code
// of the controller's own), so a process that never runs controllers (`skiff agent`) does
// not touch their code; the list is read on the first lookup.
struct StaticControllerRegistration {
  using Factory = std::unique_ptr<Controller> (*)(ControllerContext& ctx);
  StaticControllerRegistration(const char* n, Factory f) noexcept
      : name(n), factory(f), next(head) {
    head = this;
  }
  const char* name;
  Factory factory;
  StaticControllerRegistration* next;
  static inline StaticControllerRegistration* head = nullptr;
};

// name is an identifier (deployment, node_lifecycle): it names the controller in
// ManagerOptions::enabled, logs and Events. factory is a lambda without captures.
#define SKIFF_REGISTER_CONTROLLER(name, factory)                             \
  [[maybe_unused]] static ::skiff::controllers::StaticControllerRegistration \
      skiff_controller_registration_##name(                                  \
          #name,                                                             \
          [](::skiff::controllers::ControllerContext& ctx)                   \
              -> std::unique_ptr<::skiff::controllers::Controller> { return (factory)(ctx); })

// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package:
// a candidate takes the Lease when it is absent, released (no holder) or expired (its record
// has not changed for leaseDurationSeconds by this process's clock, so servers' clocks need
// not agree); the leader renews it every retry_period and steps down when it could not renew
// for renew_deadline. Every write is an update carrying the resourceVersion read, so that
// of two concurrent candidates one gets a Conflict. REQUIRES: retry_period < renew_deadline
// < lease_duration.
struct LeaderElectionConfig {
  std::string lease_namespace = "kube-system";
  std::string lease_name;
  std::string identity;  // holderIdentity; must differ between candidates
  std::chrono::milliseconds lease_duration{15000};  // written rounded up to whole seconds
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  // On stop(), a leader clears holderIdentity so that another candidate need not wait for
  // the Lease to expire.
  bool release_on_stop = true;
  const Clock* clock = nullptr;  // the times written and compared; null: the real clock
};

// Campaigns for a Lease on its own thread. Thread-safe.
class LeaderElector {
 public:
  struct Callbacks {
    // Runs on the elector's thread when the Lease is taken; must return promptly (renewals
    // wait for it).
    std::function<void()> on_started_leading;
    // Runs on the elector's thread when leadership ends (renewal failed past renew_deadline,
    // or stop()); must return only once the leader's work has stopped, as the Lease may be
    // released right after.
    std::function<void()> on_stopped_leading;
  };

  LeaderElector(client::Client& client, LeaderElectionConfig config, Callbacks callbacks);
  ~LeaderElector();  // stops
  void start();      // idempotent
  // Idempotent; when leading, runs on_stopped_leading, then releases the Lease if
  // configured. Returns once the elector's thread has ended. A stopped elector may start
  // again.
  void stop();
  // True from taking the Lease until on_stopped_leading has returned.
  bool is_leader() const;
  const LeaderElectionConfig& config() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct ManagerOptions {
  // Holder identity for the leader Lease (host name); empty: "<host name>_<uuid>".
  std::string identity;
  // Controllers to run, as kube-controller-manager's --controllers: empty or "*" for every
  // registered one, "name" to enable one, "-name" to disable one ("*", "-node_lifecycle").
  std::vector<std::string> enabled;
  ControllerOptions controller_options;
  std::chrono::milliseconds lease_duration{std::chrono::seconds(15)};
  std::chrono::milliseconds renew_deadline{std::chrono::seconds(10)};
  std::chrono::milliseconds retry_period{std::chrono::seconds(2)};
  // On stop(), release the Lease so another server takes over without waiting for it to
  // expire.
  bool release_on_stop = true;
  const Clock* clock = nullptr;  // null: the real clock
};

// Runs controllers while holding the leader Lease kube-system/skiff-controller-manager.
// On taking the Lease it creates an InformerFactory and one instance of each enabled
// controller, calls setup() on each, starts the informers, waits for them to sync, then runs
// workers() threads per controller: each takes a key, calls reconcile(key), forgets the
// key's back-off on OK and requeues it with back-off otherwise. On stop() or lost leadership
// it shuts the queues, waits for running reconciles, stops the informers and destroys the
// controllers; it campaigns again after a lost leadership. Thread-safe.
class ControllerManager {
 public:
  static constexpr const char* kLeaseNamespace = "kube-system";
  static constexpr const char* kLeaseName = "skiff-controller-manager";

  ControllerManager(client::Client& client, ManagerOptions options);
  ~ControllerManager();  // stops
  void start();          // idempotent
  void stop();           // idempotent; returns once every controller has stopped
  // True while this manager holds the Lease (and its controllers may run).
  bool is_leader() const;
  const std::string& identity() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers
