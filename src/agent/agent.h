// The node agent: registers a Node, renews its Lease and runs the pods bound to it as real
// containers (runc under conmon, overlayfs rootfs, CNI networking), writing their status
// through the API as a kubelet does.
//
// State lives under <data_dir>/agent (runc root and container bundles in runtime/, network
// namespaces and CNI state in network/ and netns/, per-pod files and logs in pods/<uid>/);
// images are shared with `skiff image` in <data_dir>/images.
//
// Containers outlive the agent: a new Agent on the same data dir adopts the containers of
// pods still bound to its node (same container, no restart) and removes those of pods that
// are gone.
//
// Pods are watched through an informer (fieldSelector spec.nodeName=<node>); each pod is
// synced by a worker from a de-duplicating queue; container exits are noticed by a relist
// of the runtime every second (as the kubelet's PLEG).
//
// Thread-safety: start() and stop() are thread-safe; everything else runs on the agent's own
// threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"

namespace skiff::client {
class Client;
}

namespace skiff::agent {

struct AgentOptions {
  std::string node_name;  // REQUIRED: metadata.name of the Node
  std::string data_dir;   // REQUIRED: skiff's data dir; the agent's state is <data_dir>/agent
  // The node's pod CIDR ("10.42.3.0/24"); empty: the Node's spec.podCIDR, as the node IPAM
  // controller assigns it (start() waits for it).
  std::string pod_cidr;
  std::string bridge_name = "skiff0";
  std::string cluster_dns = "10.43.0.10";
  std::string cluster_domain = "cluster.local";
  // The service proxy and the cluster DNS for this node's pods (see services.h).
  bool run_service_proxy = true;
  bool run_cluster_dns = true;
  // The pod network of the whole cluster (the server's --cluster-cidr): the service proxy
  // masquerades traffic to ClusterIPs from outside it. Empty: this node's pod CIDR.
  std::string cluster_cidr;
  // status.addresses InternalIP; empty: the address of the interface of the default route.
  std::string node_ip;
  // The kubelet API (agent/server/kubelet_server.h) that the API server calls for logs, exec,
  // attach, port-forward and stats: its port on the node IP (0: an ephemeral one, reported in
  // status.daemonEndpoints), and the bearer secret callers must present (the join token's
  // secret). No secret: the agent serves no kubelet API. When the port is taken (another
  // agent on this host), a free port is used and reported instead.
  int kubelet_port = 10250;
  std::string kubelet_secret;
  // Lease renewal and node status heartbeats.
  std::chrono::milliseconds lease_renew_interval{10'000};
  int lease_duration_seconds = 40;
  std::chrono::milliseconds node_status_interval{std::chrono::seconds(60)};
  // CrashLoopBackOff: the first restart waits crash_backoff_base, each next one twice as
  // long, at most crash_backoff_max (the kubelet's 10 s and 5 min).
  std::chrono::milliseconds crash_backoff_base{10'000};
  std::chrono::milliseconds crash_backoff_max{300'000};
  // How often the runtime is relisted to notice container exits.
  std::chrono::milliseconds relist_interval{1'000};
  // How long start() waits for the Node's pod CIDR when pod_cidr is empty.
  std::chrono::milliseconds pod_cidr_timeout{std::chrono::minutes(5)};
  int workers = 4;
  std::string runc_path = "/usr/sbin/runc";
  std::string conmon_path = "/usr/bin/conmon";
  std::string cni_bin_dir = "/usr/lib/cni";
  // The top-level pod cgroup (pod_cgroups.h); empty: "kubepods" with the default bridge,
  // "kubepods-<bridge>" with any other.
  std::string kubepods_cgroup;
  // Hard eviction thresholds of the node filesystem, in percent (the kubelet's
  // --eviction-hard nodefs.available<10%,nodefs.inodesFree<5%): below either, the Node reports
  // DiskPressure. 0 turns a threshold off.
  int eviction_nodefs_available_percent = 10;
  int eviction_nodefs_inodes_free_percent = 5;
  // Image garbage collection runs when the image filesystem is used at or above the high
  // threshold and frees down to the low one (the kubelet's --image-gc-high-threshold and
  // --image-gc-low-threshold); 100 turns it off.
  int image_gc_high_threshold_percent = 85;
  int image_gc_low_threshold_percent = 80;
  // The most processes (and threads) one pod may run (the kubelet's --pod-max-pids): the
  // pids.max of its pod cgroup. 0 or less: unlimited, the kubelet's default.
  int64_t pod_max_pids = 0;
};

// Applies one of the node resource flags (--eviction-hard LIST, --image-gc-high-threshold N,
// --image-gc-low-threshold N, --pod-max-pids N) to `o`; BadRequest for a bad value or an
// unknown flag.
Status parse_node_flag(const std::string& flag, const std::string& value, AgentOptions* o);

class Agent {
 public:
  // `client` must outlive the agent.
  Agent(client::Client& client, AgentOptions options);
  ~Agent();  // stop()
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Opens the image store, runtime and network, registers the Node and its Lease, waits for
  // the pod CIDR if none was given, starts the node's service proxy and cluster DNS (see
  // services.h), then starts watching and running pods. Invalid for bad options; Unavailable
  // when runc, conmon or the CNI plugins are missing, when no pod CIDR arrived in time, or
  // when the DNS port or nftables rules cannot be set up; the API's error when the Node
  // cannot be registered.
  Status start();
  // Stops watching, syncing and renewing, and removes the node's service rules and DNS.
  // Containers keep running (as when a kubelet stops), and the Node and Lease objects stay.
  // Idempotent.
  void stop();

  const AgentOptions& options() const;
  // The pod CIDR in use (after start()).
  std::string pod_cidr() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The host's figures a Node reports.
struct HostInfo {
  int64_t cpus = 1;            // logical CPUs in /proc/cpuinfo
  int64_t memory_bytes = 0;    // MemTotal in /proc/meminfo
  std::string os_image;        // PRETTY_NAME in /etc/os-release
  std::string kernel_version;  // uname -r
  std::string architecture;    // amd64, arm64, ...
  std::string machine_id;      // /etc/machine-id
  std::string boot_id;         // /proc/sys/kernel/random/boot_id
};
HostInfo read_host_info();

}  // namespace skiff::agent
