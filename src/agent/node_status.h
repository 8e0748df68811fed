// The Node and Lease objects a node agent writes, shaped as a kubelet 1.32 writes them, and the
// host facts they report. Pure functions (except the readers of the host), thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/agent.h"
#include "agent/images/image_gc.h"
#include "common/time.h"

namespace skiff::agent {

inline constexpr char kKubeletVersion[] = "v1.32.0-skiff";

// What the Node reports about this host.
struct NodeFacts {
  std::string name;
  std::string internal_ip;
  HostInfo host;
  std::string runtime_version;  // "runc://1.1.5"
  int64_t ephemeral_storage_bytes = 0;
  int kubelet_port = 10250;  // status.daemonEndpoints.kubeletEndpoint.Port
};

// The IPv4 address of the default route's interface (else the first non-loopback one, else
// 127.0.0.1).
std::string detect_node_ip();
// "runc://<version>" from `runc --version`.
std::string runc_version(const std::string& runc_path);
// Size of the filesystem holding `path`, in bytes; 0 if unknown.
int64_t filesystem_bytes(const std::string& path);

// What the node's pressure conditions report now.
struct NodePressure {
  bool disk = false;  // DiskPressure
};

// The kubelet's default hard eviction thresholds for the node filesystem (the one holding its
// data dir): nodefs.available<10% and nodefs.inodesFree<5%.
inline constexpr int kNodefsAvailableMinPercent = 10;
inline constexpr int kNodefsInodesFreeMinPercent = 5;
struct EvictionThresholds {
  int nodefs_available_percent = kNodefsAvailableMinPercent;  // 0: off
  int nodefs_inodes_free_percent = kNodefsInodesFreeMinPercent;  // 0: off
};
// Parses the kubelet's --eviction-hard list for the node filesystem, e.g.
// "nodefs.available<5%,nodefs.inodesFree<2%" (imagefs.* count for the same filesystem, the
// image store living on it). Signals not given keep their default; other signals and values
// that are not a percentage give BadRequest.
Result<EvictionThresholds> parse_eviction_hard(const std::string& list);
// True when `nodefs` is below either threshold (the inode one only where the filesystem has a
// fixed inode count).
bool disk_pressure(const images::FilesystemStats& nodefs, const EvictionThresholds& t = {});
// disk_pressure of the filesystem holding `path`; false when it cannot be read.
bool node_disk_pressure(const std::string& path, const EvictionThresholds& t = {});

// Ready/MemoryPressure/DiskPressure/PIDPressure with the kubelet's reasons and messages
// (DiskPressure True, KubeletHasDiskPressure, "kubelet has disk pressure" under pressure, else
// False, KubeletHasNoDiskPressure); lastTransitionTime kept from `current` (a Node) where the
// status is unchanged. Without `pressure`, none is reported.
nlohmann::json node_conditions(const nlohmann::json* current, TimePoint now);
nlohmann::json node_conditions(const nlohmann::json* current, TimePoint now,
                               const NodePressure& pressure);
nlohmann::json node_status(const NodeFacts& facts, const nlohmann::json* current, TimePoint now);
nlohmann::json node_status(const NodeFacts& facts, const nlohmann::json* current, TimePoint now,
                           const NodePressure& pressure);
nlohmann::json node_labels(const NodeFacts& facts);
nlohmann::json node_object(const NodeFacts& facts, TimePoint now);

// The node's Lease in kube-node-lease (owned by the Node when node_uid is known), and the
// merge patch that renews it.
nlohmann::json lease_object(const std::string& node_name, const std::string& node_uid,
                            int lease_duration_seconds, TimePoint now);
std::string lease_renewal_patch(const std::string& node_name, int lease_duration_seconds,
                                TimePoint now);

}  // namespace skiff::agent
