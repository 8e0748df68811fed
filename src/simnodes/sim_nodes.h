// SimNodes: lightweight in-process node agents for tests and benchmarks at scale, as kwok
// does. Each simulated node registers a Node object, renews its Lease in kube-node-lease and
// "runs" the pods bound to it without starting containers: a bound pod is reported Running
// and Ready with an IP from the node's spec.podCIDR; a pod whose restartPolicy is Never or
// OnFailure (a Job's pod) is reported Succeeded after a short run; a pod marked for deletion
// is finalized (DELETE with gracePeriodSeconds=0) after a short delay, as a kubelet does
// once its containers have stopped.
//
// Everything goes through the API (a Client with the in-process or the HTTPS transport), so
// the control plane sees simulated nodes exactly as it would see real kubelets.
//
// Scale: thousands of nodes in one process cost a few threads and a few hundred bytes per
// node. Lease renewals are spread evenly over the renewal interval across a few lease
// threads (no thread per node); pods are watched through one pod informer (shared, if the
// caller passes an InformerFactory) indexed by spec.nodeName; status writes are issued by
// a pool of worker threads from a de-duplicating queue, so that a burst of pods is written
// concurrently while lease renewals keep their own threads and never wait behind it.
//
// A node may be paused: it then behaves as a stopped kubelet (no lease renewals, no node
// status, its pods left as they are), so that the node lifecycle controller marks it
// NotReady; resume_node() brings it back.
//
// Thread-safety: every method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/informer.h"
#include "common/status.h"
#include "common/time.h"

namespace skiff::simnodes {

// Label put on every simulated node ("true"), so that tests and benchmarks can select them.
inline constexpr char kSimulatedNodeLabel[] = "skiff.dev/simulated-node";
// Pod annotations a test may set to steer a simulated run-to-completion pod:
//  - how long it runs before it completes (a Go duration: "30s", "1m"; default
//    SimNodesOptions::job_run_time);
//  - the exit code of its containers ("0" default; non-zero makes a restartPolicy=Never
//    pod Failed).
inline constexpr char kRunTimeAnnotation[] = "skiff.dev/simulated-run-time";
inline constexpr char kExitCodeAnnotation[] = "skiff.dev/simulated-exit-code";
// The informer index of pods by spec.nodeName (shared with other users of the informer).
inline constexpr char kPodNodeNameIndex[] = "spec.nodeName";

struct NodeTaint {
  std::string key;
  std::string value;
  std::string effect;  // NoSchedule, PreferNoSchedule, NoExecute
};

struct SimNodesOptions {
  int count = 1;
  // Nodes are named <name_prefix><i> for i in [first_index, first_index + count).
  std::string name_prefix = "sim-";
  int first_index = 0;

  // status.capacity (and allocatable) of every node.
  std::string cpu = "4";
  std::string memory = "8Gi";
  std::string pods = "110";
  std::string ephemeral_storage = "100Gi";
  // Extra metadata.labels (on top of kubernetes.io/hostname, kubernetes.io/os,
  // kubernetes.io/arch and kSimulatedNodeLabel) and spec.taints.
  std::map<std::string, std::string> labels;
  std::vector<NodeTaint> taints;
  std::string architecture = "amd64";
  std::string kubelet_version = "v1.32.0-skiff";
  // status.addresses InternalIP of the first node; the next nodes count up from it.
  std::string first_internal_ip = "172.16.0.1";

  // A node renews its Lease this often, each node at its own offset within the interval.
  std::chrono::milliseconds lease_renew_interval{10'000};
  int lease_duration_seconds = 40;
  // A node posts its status (condition heartbeats) this often, as a kubelet's
  // nodeStatusReportFrequency; and at once when the server shows it other than Ready.
  std::chrono::milliseconds node_status_report_interval{std::chrono::minutes(5)};
  // How long a pod with restartPolicy Never/OnFailure runs before it Succeeds (the pod's
  // kRunTimeAnnotation overrides it). Zero: it completes as soon as it is seen.
  std::chrono::milliseconds job_run_time{1'000};
  // How long after a pod is marked for deletion it is finalized (containers "stopping").
  std::chrono::milliseconds deletion_delay{200};

  // Threads writing pod and node status concurrently.
  int workers = 16;
  // Threads registering nodes and renewing leases; 0: one per 500 nodes, 1 to 8.
  int lease_workers = 0;
  // The times written into objects; null: the real clock.
  const Clock* clock = nullptr;
};

class SimNodes {
 public:
  // What the simulated nodes have done so far.
  struct Stats {
    uint64_t nodes_registered = 0;
    uint64_t lease_renewals = 0;
    uint64_t lease_failures = 0;
    uint64_t node_status_updates = 0;
    uint64_t pods_started = 0;    // reported Running
    uint64_t pods_completed = 0;  // reported Succeeded or Failed
    uint64_t pods_finalized = 0;  // deleted with gracePeriodSeconds=0
    uint64_t write_failures = 0;  // pod or node writes that failed (and were retried)
  };

  // `client` must outlive this object. `informers`, if given, provides the pod and node
  // informers (shared with other components of the process; this object starts them);
  // otherwise SimNodes makes its own. Either way the informers may outlive this object.
  SimNodes(client::Client& client, SimNodesOptions options,
           client::InformerFactory* informers = nullptr);
  ~SimNodes();  // stop()
  SimNodes(const SimNodes&) = delete;
  SimNodes& operator=(const SimNodes&) = delete;

  // Registers every node (creating its Node, or refreshing the status of one that already
  // exists, e.g. after a restart of the simulating process) and its Lease, then starts
  // renewing leases and running pods. Blocks until every node is registered. Returns
  // BadRequest for bad options (a negative count, an unparsable quantity, IP or taint
  // effect), else the first registration error that persisted through a few retries
  // (Unavailable when the server cannot be reached); the nodes registered by then keep
  // running until stop(). Idempotent (later calls return the first call's result).
  Status start();
  // Stops renewing and watching and waits for writes in flight. The Node and Lease objects
  // stay (as when kubelets stop). Idempotent; a stopped SimNodes does not start again.
  void stop();
  // Deletes the Node and Lease objects of every node (after stop(), or while running: the
  // nodes then stop first). Returns the first error other than NotFound.
  Status delete_nodes();

  // The nodes' names, in index order (empty before start()).
  std::vector<std::string> node_names() const;
  // REQUIRES for the three below: start() has returned.
  // A paused node acts as a stopped kubelet: its lease is not renewed, its status not
  // posted and its pods left alone. Resuming renews its lease and posts Ready at once, and
  // runs (or finalizes) its pods again. NotFound for a name that is not one of these nodes.
  Status pause_node(const std::string& name);
  Status resume_node(const std::string& name);
  bool node_paused(const std::string& name) const;

  Stats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace skiff::simnodes
