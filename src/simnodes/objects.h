// The objects a simulated kubelet writes: its Node, its Lease, and the status of the pods it
// runs, shaped as a kubelet 1.32 writes them.
//
// All functions are pure and thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/time.h"
#include "simnodes/sim_nodes.h"

namespace skiff::simnodes {

using nlohmann::json;

// An IPv4 address as a number ("10.42.0.1" -> 0x0a2a0001); nullopt if `text` is not a
// dotted quad.
std::optional<uint32_t> parse_ipv4(std::string_view text);
std::string format_ipv4(uint32_t ip);

// An IPv4 CIDR block ("10.42.3.0/24"), its base address masked to the prefix.
struct Ipv4Block {
  uint32_t base = 0;
  int prefix = 32;

  // nullopt unless `text` is "a.b.c.d/n" with n in [0, 32].
  static std::optional<Ipv4Block> parse(std::string_view text);
  uint64_t size() const { return uint64_t{1} << (32 - prefix); }
  bool contains(uint32_t ip) const {
    return prefix == 0 || (ip >> (32 - prefix)) == (base >> (32 - prefix));
  }
  std::string to_string() const;
  friend bool operator==(const Ipv4Block&, const Ipv4Block&) = default;
};

// The fake pod range of the node with index `node_index` when it has no spec.podCIDR: a /24
// of 10.128.0.0/9 (outside the default cluster CIDR), distinct for the first 32768 nodes.
Ipv4Block fallback_pod_range(uint32_t node_index);

// The pod range of `node`: the first IPv4 block of spec.podCIDRs (or spec.podCIDR); nullopt
// when it has none.
std::optional<Ipv4Block> node_pod_range(const json& node);

// The four kubelet conditions (MemoryPressure, DiskPressure, PIDPressure False; Ready True)
// with lastHeartbeatTime `now`; each keeps the lastTransitionTime it has in `current` (the
// node as the server has it, or null) when its status is unchanged.
json node_conditions(const json* current, TimePoint now);

// status of a simulated node: capacity, allocatable, conditions, addresses, daemonEndpoints
// and nodeInfo.
json node_status(const SimNodesOptions& options, const std::string& name,
                 const std::string& internal_ip, const json* current, TimePoint now);

// The Node a simulated kubelet registers.
json node_object(const SimNodesOptions& options, const std::string& name,
                 const std::string& internal_ip, TimePoint now);

// The node's Lease in kube-node-lease, owned by the node when node_uid is known.
json lease_object(const std::string& node_name, const std::string& node_uid,
                  int lease_duration_seconds, TimePoint now);
// The merge patch that renews it.
std::string lease_renewal_patch(const std::string& node_name, int lease_duration_seconds,
                                TimePoint now);

// True for a pod that runs to completion: restartPolicy Never or OnFailure.
bool runs_to_completion(const json& pod);
// How long such a pod runs: its kRunTimeAnnotation, else `fallback`.
std::chrono::milliseconds run_time(const json& pod, std::chrono::milliseconds fallback);
// The exit code of its containers: its kExitCodeAnnotation, else 0.
int exit_code(const json& pod);
// True when the pod is Running, Ready and has its IP: nothing for a kubelet to report.
bool reported_running(const json& pod);
// True when status.phase is Succeeded or Failed.
bool terminal(const json& pod);
// True when metadata.deletionTimestamp is set.
bool being_deleted(const json& pod);
// status.podIP, or "".
std::string pod_ip(const json& pod);

// The status of a pod whose containers all run: phase Running, conditions
// PodReadyToStartContainers, Initialized, Ready, ContainersReady and PodScheduled True,
// hostIP(s), podIP(s), startTime, and a running, ready status for each container (init
// containers terminated with exit code 0, sidecars running). Times already in the pod's
// status are kept where the state they describe is unchanged.
json running_pod_status(const json& pod, const std::string& ip, const std::string& host_ip,
                        TimePoint now);
// The status of a pod whose containers exited with `code`: phase Succeeded (0) or Failed,
// Ready and ContainersReady False, each container terminated.
json completed_pod_status(const json& pod, int code, TimePoint now);

}  // namespace skiff::simnodes
