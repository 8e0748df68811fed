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
// Thread-safe.
class WorkQueue {
 public:
  explicit WorkQueue(std::string name);
  ~WorkQueue();
  void add(const std::string& key);
  void add_after(const std::string& key, std::chrono::milliseconds delay);
  // Per-key exponential back-off: 5 ms doubling up to 1000 s, as client-go's default.
  void add_rate_limited(const std::string& key);
  void forget(const std::string& key);  // resets the key's back-off
  int requeues(const std::string& key) const;
  // Blocks for the next key; false once shut down.
  bool get(std::string* key);
  void done(const std::string& key);
  void shutdown();
  size_t size() const;
  const std::string& name() const { return name_; }

  struct Impl;

 private:
  std::string name_;
  std::unique_ptr<Impl> impl_;
};

// Records Kubernetes Events (what `kubectl describe` shows), aggregating repeats of the same
// event into one object with a count, as client-go's recorder does. Writes happen on a
// background thread; record() never blocks. Thread-safe.
class EventRecorder {
 public:
  EventRecorder(client::Client& client, std::string component, std::string host = "");
  ~EventRecorder();
  // type: "Normal" or "Warning"; reason: CamelCase ("ScalingReplicaSet").
  void record(const nlohmann::json& involved_object, const std::string& type,
              const std::string& reason, const std::string& message);
  void flush();  // waits until every recorded event has been written (tests)

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

// What a controller gets to work with. All members outlive the controller.
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

// Adds a controller to the process-wide list; used through SKIFF_REGISTER_CONTROLLER.
bool register_controller(const std::string& name, ControllerFactory factory);
// The registered names, sorted.
std::vector<std::string> registered_controllers();

#define SKIFF_REGISTER_CONTROLLER(name, factory) \
  static const bool skiff_controller_registered_##name = \
      ::skiff::controllers::register_controller(#name, factory)

struct ManagerOptions {
  std::string identity;                 // holder identity for the leader Lease (host name)
  std::vector<std::string> enabled;     // empty: every registered controller
  ControllerOptions controller_options;
  std::chrono::seconds lease_duration{15};
  std::chrono::seconds renew_deadline{10};
  std::chrono::seconds retry_period{2};
  const Clock* clock = nullptr;         // null: the real clock
};

// Runs controllers while holding the leader Lease. Thread-safe.
class ControllerManager {
 public:
  ControllerManager(client::Client& client, ManagerOptions options);
  ~ControllerManager();  // stops
  void start();
  void stop();
  bool is_leader() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers
