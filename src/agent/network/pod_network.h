// Pod sandbox networking on one node: each pod gets persistent network, IPC and UTS
// namespaces (hostname = the pod's hostname) that its containers join by path, wired to a
// Linux bridge by the standard CNI plugins: bridge + host-local IPAM over the node's pod CIDR,
// portmap for hostPorts, and loopback.
//
// Everything lives under the node's state dir, so that two agents (or two tests) with their
// own state dir, bridge name and pod CIDR never share anything:
//   <state>/netns/<pod-uid>/{net,ipc,uts}     the pod's namespaces (see sandbox_namespaces.h)
//   <state>/network/<network>.conflist        the CNI configuration list skiff runs
//   <state>/network/loopback.conf             the loopback plugin's configuration
//   <state>/network/ipam/<network>/           host-local's allocations
//   <state>/network/pods/<pod-uid>.json       a record per pod (IP, namespaces, ADD result),
//                                             so that teardown works after an agent restart
//
// Usage:
//   auto net = PodNetwork::open({.state_dir = "/var/lib/skiff/agent",
//                                .pod_cidr = "10.42.0.0/24"});
//   auto sandbox = (*net)->create_sandbox({.pod_uid = uid, .pod_name = "web-0",
//                                          .pod_namespace = "default"});
//   // runc: namespaces [{type: network, path: sandbox->net_ns}, {type: ipc, ...}, ...]
//   // status.podIP = sandbox->pod_ip
//   (*net)->remove_sandbox(uid);
//
// A pod start overlaps the network attach with creating its containers:
//   auto pending = (*net)->begin_create_sandbox(request);  // the namespaces exist now
//   // runc create with (*pending)->namespaces().net_ns, ...
//   auto sandbox = (*pending)->wait();                      // attached (or torn down)
//   // runc start
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::agent::network {

struct PodNetworkOptions {
  std::string state_dir;               // REQUIRED: the node's state dir (absolute path)
  std::string pod_cidr;                // REQUIRED: the node's pod CIDR (IPv4), e.g. "10.42.0.0/24"
  std::string bridge_name = "skiff0";  // at most 15 characters
  // The CNI network name, which tags the plugins' iptables rules and names host-local's
  // allocation dir; "" means the bridge name (unique on the host by construction).
  std::string network_name;
  std::string cni_bin_dir = "/usr/lib/cni";
  int mtu = 0;                                      // 0: the bridge plugin's default
  std::chrono::milliseconds plugin_timeout{60000};  // per CNI plugin execution
};

// A container port published on the node (containers[].ports[] with a hostPort).
struct HostPortMapping {
  int container_port = 0;
  int host_port = 0;
  std::string protocol = "TCP";  // TCP, UDP or SCTP (any case)
  std::string host_ip;           // "" for every node address
  bool operator==(const HostPortMapping&) const = default;
};

struct PodSandboxRequest {
  std::string pod_uid;        // REQUIRED: metadata.uid
  std::string pod_name;       // REQUIRED: metadata.name
  std::string pod_namespace;  // metadata.namespace
  // The UTS hostname: spec.hostname, or "" for the pod name. Cut to 63 characters (and then
  // trailing '-' and '.') as the kubelet does.
  std::string hostname;
  std::vector<HostPortMapping> port_mappings;
};

struct PodSandbox {
  std::string pod_uid;
  std::string pod_name;
  std::string pod_namespace;
  std::string hostname;
  // Namespace files for runc's `namespaces[].path`.
  std::string net_ns;
  std::string ipc_ns;
  std::string uts_ns;
  std::string pod_ip;  // status.podIP
  int prefix_length = 0;
  std::string gateway;         // the bridge's address, the pod's default route
  std::string mac;             // of the pod's eth0
  std::string host_interface;  // the host end of the pod's veth pair
  std::vector<HostPortMapping> port_mappings;
};

// A sandbox whose creation has begun (PodNetwork::begin_create_sandbox): its namespaces
// exist, so containers can be created in them, while the network attach (CNI ADD) may still
// run on a thread of its own. Containers must not start before wait() returned the sandbox.
// Destroying it waits for the attach (whose outcome stands: a ready sandbox stays). Not
// thread-safe; the PodNetwork must outlive it.
class PendingPodSandbox {
 public:
  ~PendingPodSandbox();
  PendingPodSandbox(const PendingPodSandbox&) = delete;
  PendingPodSandbox& operator=(const PendingPodSandbox&) = delete;

  // The sandbox's identity, hostname and namespace paths; the network fields (pod_ip, ...)
  // are filled in only once wait() succeeded.
  const PodSandbox& namespaces() const;
  // Waits for the attach to finish. Returns the ready sandbox, or the error create_sandbox
  // would return (the sandbox is then torn down, namespaces included). Calls after the first
  // return the same answer at once.
  Result<PodSandbox> wait();

  struct State;

 private:
  friend class PodNetwork;
  explicit PendingPodSandbox(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

// Thread-safe. Calls for different pods run concurrently; calls for the same pod are
// serialized.
class PodNetwork {
 public:
  // Validates the options, checks that the plugins (bridge, host-local, portmap, loopback)
  // are installed and which CNI version they speak (1.0.0, else 0.4.0), writes the
  // configuration files and loads the records of existing sandboxes (after an agent restart).
  // Invalid for bad options (message names the option); Unavailable when a plugin is missing
  // or unusable; Internal when the state dir cannot be written.
  static Result<std::unique_ptr<PodNetwork>> open(PodNetworkOptions options);
  ~PodNetwork();
  PodNetwork(const PodNetwork&) = delete;
  PodNetwork& operator=(const PodNetwork&) = delete;

  // Creates the pod's namespaces and attaches them to the network (loopback, then the
  // conflist with the request's host ports). Idempotent: for a pod whose sandbox exists and
  // is alive, returns it unchanged (even if the request differs); a sandbox that is recorded
  // but no longer alive (host reboot, a crash half-way) is torn down and created anew.
  // Invalid for a bad request; the CNI plugins' errors as cni.h describes (everything set up
  // so far is undone then); Internal for namespace or state-dir failures.
  Result<PodSandbox> create_sandbox(const PodSandboxRequest& request);

  // create_sandbox in two steps: returns once the pod's namespaces exist, leaving the network
  // attach to run in the background (see PendingPodSandbox), so that containers can be created
  // meanwhile. For a sandbox that is ready and alive it returns at once, already finished.
  // The errors of create_sandbox that come before the attach (invalid request, namespaces,
  // state dir, tearing down a stale sandbox); the attach's own errors come from wait().
  Result<std::unique_ptr<PendingPodSandbox>> begin_create_sandbox(const PodSandboxRequest& request);

  // Detaches the pod from the network (CNI DEL: veth, IP allocation, iptables rules) and
  // deletes its namespaces and record. Idempotent: OK for an unknown pod, and also when the
  // namespaces are already gone. On a CNI error the record is kept, so a retry can finish.
  Status remove_sandbox(const std::string& pod_uid);

  // The pod's recorded sandbox; NotFound if there is none (or it is being created). After a
  // host reboot its namespaces may be gone: create_sandbox then replaces it.
  Result<PodSandbox> get_sandbox(const std::string& pod_uid) const;
  // Every sandbox this node has, sorted by pod uid.
  std::vector<PodSandbox> list_sandboxes() const;

  // CNI CHECK: OK when the pod's networking is as it was set up; NotFound for an unknown
  // pod; Internal naming what is wrong (namespaces gone, veth or iptables rules missing).
  Status check_sandbox(const std::string& pod_uid);

  // The options in use, defaults filled in.
  const PodNetworkOptions& options() const;
  // The CNI version spoken with the plugins ("1.0.0" or "0.4.0").
  const std::string& cni_version() const;
  std::string conflist_path() const;

 private:
  struct Impl;
  explicit PodNetwork(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Removes everything the network layer set up for `options.state_dir`: tears down every
// recorded sandbox (CNI DEL), then removes whatever is still left: iptables rules tagged with
// the network name and their chains, all namespaces under <state>/netns, the bridge, and
// <state>/network (records, configuration, IP allocations). Only options.state_dir,
// bridge_name, network_name and cni_bin_dir are used; it works without a PodNetwork, after a
// crash, and when the plugins are gone. Keeps going after a failure and returns the first.
// The host-wide net.ipv4.ip_forward=1 the bridge plugin sets is left as it is (others rely on
// it), as are portmap's shared chains (see remove_unused_hostport_chains in cni_iptables.h).
Status cleanup_pod_network(const PodNetworkOptions& options);

}  // namespace skiff::agent::network
