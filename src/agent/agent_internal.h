// The agent's internals, shared by agent.cc (node, lease, informers, relist) and
// pod_worker.cc (one worker thread per pod). Not a public header.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <utility>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/images/store.h"
#include "agent/network/pod_network.h"
#include "agent/node_status.h"
#include "agent/pod_cgroups.h"
#include "agent/runtime/runtime.h"
#include "client/client.h"
#include "client/informer.h"
#include "common/executor.h"
#include "common/time.h"

namespace skiff::agent {

// The Docker-links-style variables the kubelet gives containers for the Services of their
// namespace (when enableServiceLinks) and for the master Service default/kubernetes:
// <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT, <NAME>_PORT, <NAME>_PORT_<port>_<PROTO>[_PROTO|
// _PORT|_ADDR], for Services with a cluster IP.
std::vector<std::string> service_env(const std::vector<client::ObjectPtr>& services,
                                     const std::string& pod_namespace, bool enable_service_links);

// True when pod `b` differs from `a` in more than its status, resourceVersion and
// managedFields (what writing the pod's status changes).
bool pod_changed_beyond_status(const nlohmann::json& a, const nlohmann::json& b);

// Containers are named "<pod uid>_<container name>_<attempt>" ('_' appears in neither a uid
// nor a container name), so that the runtime's list alone tells which pod and container a
// runtime container belongs to, and its restart count, after an agent restart.
struct ContainerName {
  std::string pod_uid;
  std::string name;
  int attempt = 0;
};
std::string container_id(const std::string& pod_uid, const std::string& name, int attempt);
bool parse_container_id(const std::string& id, ContainerName* out);

struct PodWorker;
class Prober;
class NodeServices;
class VolumeManager;
class StatsSummaryProvider;
class Housekeeping;
namespace server {
class KubeletServer;
}

struct Agent::Impl {
  Impl(client::Client& client, AgentOptions options);
  ~Impl();

  Status start_locked();
  void stop();
  Status register_node();
  Status renew_lease();
  Status post_node_status();
  void lease_loop();
  void relist_loop();
  void on_node(const client::ObjectPtr& node);
  void on_pod(const client::ObjectPtr& pod);
  void notify_worker(const std::string& uid, const std::string& ns, const std::string& name);
  void wake(const std::string& uid);
  bool pod_known(const std::string& uid);
  std::string pod_dir(const std::string& uid) const;
  void remove_pod_resources(const std::string& uid);
  std::vector<runtime::ContainerStatus> pod_containers(const std::string& uid);
  // Writes a core/v1 Event about `pod` (source component "kubelet", host the node).
  // Queued and sent in order by send_events() on the pod executor.
  void record_event(const nlohmann::json& pod, const std::string& type, const std::string& reason,
                    const std::string& message, const std::string& field_path = "");
  // Queues an Event about `involved` (an involvedObject) in namespace `ns`.
  void post_event(nlohmann::json involved, const std::string& ns, const std::string& type,
                  const std::string& reason, const std::string& message);
  void send_events();
  EvictionThresholds eviction_thresholds() const;

  // Constant after construction.
  client::Client& client;
  const AgentOptions options;
  std::string state_dir;

  // Set by start(), then constant.
  NodeFacts facts;
  std::string node_uid;
  std::unique_ptr<images::ImageStore> image_store;
  std::unique_ptr<runtime::ContainerRuntime> container_runtime;
  std::unique_ptr<PodCgroups> pod_cgroups;  // kubepods[/burstable|/besteffort]/pod<uid>
  std::unique_ptr<network::PodNetwork> pod_network;
  std::unique_ptr<client::Informer> node_informer;
  std::unique_ptr<client::Informer> pod_informer;
  // The Services (for pods' env) and EndpointSlices the proxy and DNS read: one watch each.
  std::unique_ptr<client::InformerFactory> shared_informers;
  client::Informer* service_informer = nullptr;  // of shared_informers
  std::unique_ptr<NodeServices> node_services;  // the service proxy and cluster DNS
  // Liveness, readiness and startup probes (probes.h).
  std::unique_ptr<Prober> prober;
  // ConfigMaps and Secrets of every namespace, for volumes and env (volumes.h).
  std::unique_ptr<client::Informer> config_map_informer;
  std::unique_ptr<client::Informer> secret_informer;
  std::unique_ptr<VolumeManager> volumes;
  // The kubelet API and what it serves from /stats/summary; started before the Node is
  // registered (the Node reports its port), resolving pods once pods_ready.
  std::unique_ptr<StatsSummaryProvider> stats_provider;
  std::unique_ptr<server::KubeletServer> kubelet_server;
  // Container log rotation (housekeeping.h); started with the relist loop.
  std::unique_ptr<Housekeeping> housekeeping;
  std::atomic<bool> pods_ready{false};
  Status start_kubelet_server();

  std::mutex mu;  // serializes start()
  bool started = false;
  Status start_status;

  std::mutex cidr_mu;
  std::condition_variable cidr_cv;
  std::string node_pod_cidr;  // guarded by cidr_mu
  std::string pod_cidr;       // guarded by cidr_mu once start() returned

  std::atomic<bool> running{false};
  std::mutex loop_mu;
  std::condition_variable loop_cv;
  std::thread lease_thread;
  std::thread relist_thread;

  std::mutex workers_mu;
  std::map<std::string, std::shared_ptr<PodWorker>> workers;  // by pod uid; guarded
  std::mutex events_mu;
  std::deque<nlohmann::json> pending_events;  // guarded by events_mu
  bool events_sending = false;                // guarded by events_mu

  // Runs the pod workers' syncs and sends events: as many threads as run at once, none when
  // idle.
  std::unique_ptr<Executor> pod_executor;
};

// Syncs one pod whenever notified (informer events, container state changes) or when a
// back-off it set expires, one sync at a time, on the agent's pod executor (a pod has no
// thread of its own while nothing happens to it). Ends once the pod is gone and torn down.
struct PodWorker : std::enable_shared_from_this<PodWorker> {
  // Queues a sync (unless one is queued already; a sync running now is followed by another).
  void notify();
  void request_stop();
  // Runs one queued sync, then schedules the next one if it was asked for.
  void run_once();
  // One pass; returns true when the pod is gone and everything of it removed.
  bool sync();
  bool terminate(const nlohmann::json& pod);
  void sync_running(const nlohmann::json& pod);
  // Starts attempt `attempt` of container `c`; false when it could not (the reason is kept
  // in waiting[]).
  bool start_container(const nlohmann::json& pod, const nlohmann::json& c, int attempt, bool init);
  bool ensure_image(const nlohmann::json& pod, const nlohmann::json& c, std::string* image_ref);
  // Waits for the network attach of this sync's sandbox (pending_sandbox), then writes the pod
  // IP into the pod's /etc/hosts; false when the attach failed (reported once per sync).
  bool await_sandbox(const nlohmann::json& pod);
  void retry_at(TimePoint t);
  // Kills the running containers whose liveness or startup probe failed (gracefully, with the
  // probe's or the pod's grace period), to be restarted per restartPolicy; true if it killed.
  bool kill_unhealthy(const nlohmann::json& pod,
                      const std::map<std::string, std::vector<runtime::ContainerStatus>>& latest);
  // Starts or keeps the probes of the running containers, stops those of the others.
  void sync_probes(const nlohmann::json& pod,
                   const std::map<std::string, std::vector<runtime::ContainerStatus>>& latest);

  // Constant after construction.
  std::string uid;
  std::string ns;
  std::string name;
  Agent::Impl* agent = nullptr;
  std::atomic<bool> finished{false};

  std::mutex mu;
  bool dirty = false;                // guarded by mu
  bool stopping = false;             // guarded by mu
  bool queued = false;               // guarded by mu: a run_once is posted
  bool syncing = false;              // guarded by mu: a sync runs now
  std::optional<TimePoint> wake_at;  // guarded by mu
  uint64_t timer = 0;                // guarded by mu: the executor timer for wake_at

  // Worker-thread state.
  struct Waiting {
    std::string reason;
    std::string message;
  };
  std::map<std::string, Waiting> waiting;         // by container name
  std::map<std::string, TimePoint> pull_backoff;  // by container name: no pull before
  std::map<std::string, int> pull_failures;       // by container name
  std::map<std::string, TimePoint> start_backoff;  // by container name: no create before
  std::map<std::string, int> start_failures;       // by container name
  std::map<std::string, std::string> image_ids;   // by container name
  std::set<std::string> backoff_reported;         // container ids already reported
  bool dns_written = false;
  std::string pod_ip;
  // This sync's sandbox: its namespaces exist; the network attach may still run.
  std::unique_ptr<network::PendingPodSandbox> pending_sandbox;
  bool sandbox_failed = false;  // this sync's network attach failed
  std::string hosts_pod_ip;     // the pod IP the pod's /etc/hosts names ("" for none yet)
  // The status last written, serialized: a tenth of the memory of its JSON tree.
  std::optional<std::string> last_status;
  // Its conditions' lastTransitionTime, by type and status: they hold while the status does.
  std::map<std::pair<std::string, std::string>, std::string> last_transitions;
  std::string start_time;
};

}  // namespace skiff::agent
