// Driving the standard CNI plugins as the CNI specification describes: network configuration
// lists written by skiff, each plugin executed with CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/
// CNI_IFNAME/CNI_ARGS/CNI_PATH in its environment and its configuration (plus runtimeConfig
// and prevResult) on standard input, results parsed into what the pod status needs.
//
// Configurations and results cross this header as JSON text, so that callers do not depend on
// a JSON library. All functions are thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::agent::network {

// What skiff's pod network configuration list is made from.
struct CniNetworkConfig {
  std::string name;           // the CNI network name; tags the plugins' iptables rules
  std::string cni_version;    // "1.0.0" or "0.4.0"
  std::string bridge;         // the Linux bridge the pods attach to (at most 15 characters)
  std::string subnet;         // the node's pod CIDR, e.g. "10.42.0.0/24"
  std::string gateway;        // the bridge's address in the subnet, e.g. "10.42.0.1"
  std::string ipam_data_dir;  // host-local's dataDir (allocations live in <dir>/<name>/)
  int mtu = 0;                // 0: the plugin's default
};

// The conflist: bridge (isGateway, ipMasq, hairpinMode) with host-local IPAM over the subnet
// (default route via the gateway), then portmap (capabilities.portMappings, SNAT on).
std::string render_conflist(const CniNetworkConfig& config);
// The separate single-plugin configuration that brings up the pod's loopback interface.
std::string render_loopback_config(const std::string& cni_version);

// One hostPort to forward, as in a container's `ports` entry.
struct CniPortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";  // "tcp", "udp" or "sctp" (lower case, as portmap wants)
  std::string host_ip;           // "" for every host address
  bool operator==(const CniPortMapping&) const = default;
};

// Per-invocation parameters.
struct CniRuntime {
  std::string bin_dir = "/usr/lib/cni";       // CNI_PATH: where the plugin binaries are
  std::string container_id;                   // CNI_CONTAINERID
  std::string netns;                          // CNI_NETNS ("" allowed for DEL: namespace is gone)
  std::string ifname = "eth0";                // CNI_IFNAME
  std::string args;                           // CNI_ARGS, e.g. "IgnoreUnknown=1;K8S_POD_NAME=x"
  std::vector<CniPortMapping> port_mappings;  // runtimeConfig.portMappings
  std::chrono::milliseconds timeout{60000};   // per plugin execution
};

// Runs ADD through every plugin of `conflist` in order, each getting the previous one's
// result as prevResult. Returns the final result (JSON text). A plugin's error becomes a Status
// naming the plugin and command with the plugin's msg and details: Unavailable when a plugin
// binary is missing or the plugin asks to try again later (code 11), Internal otherwise. The
// caller should run cni_del_list after a failed ADD to release what was set up.
Result<std::string> cni_add_list(const std::string& conflist, const CniRuntime& runtime);
// Runs DEL through the plugins in reverse order, with `cached_result` (the ADD result, "" if
// unknown) as prevResult. Idempotent as the plugins are: OK when nothing is left to delete,
// also when the namespace is gone (pass netns ""). Runs every plugin even after a failure and
// returns the first failure.
Status cni_del_list(const std::string& conflist, const CniRuntime& runtime,
                    const std::string& cached_result);
// Runs CHECK through the plugins in order with `cached_result` as prevResult: OK when the
// container's networking is as ADD left it, Internal naming what is wrong otherwise.
Status cni_check_list(const std::string& conflist, const CniRuntime& runtime,
                      const std::string& cached_result);

// The same for a single-plugin configuration (the loopback one).
Result<std::string> cni_add(const std::string& config, const CniRuntime& runtime);
Status cni_del(const std::string& config, const CniRuntime& runtime);

// The spec versions the plugin binary at `plugin_path` supports (CNI_COMMAND=VERSION).
// Unavailable when it cannot be run.
Result<std::vector<std::string>> cni_supported_versions(const std::string& plugin_path);

// What the pod needs from an ADD result.
struct CniResultSummary {
  std::string pod_ip;          // first IPv4 address on the container interface, "10.42.0.5"
  int prefix_length = 0;       // 24
  std::string gateway;         // "10.42.0.1" ("" when the result names none)
  std::string mac;             // the container interface's MAC address
  std::string host_interface;  // the host end of the veth pair ("" if not reported)
};
// Reads a CNI 0.4.0 or 1.0.0 result. `ifname` is the container interface (CNI_IFNAME) and
// `bridge` the bridge's name, to tell the interfaces apart. Internal when the result is not
// JSON or carries no IPv4 address.
Result<CniResultSummary> parse_cni_result(const std::string& result, const std::string& ifname,
                                          const std::string& bridge);

}  // namespace skiff::agent::network
