// The /etc/hosts, /etc/resolv.conf and /etc/hostname a pod's containers see, written into the
// pod's directory on the host and bind-mounted into each container, as the kubelet does.
// All functions are thread-safe; the file writers replace a file atomically (write, fsync,
// rename), so a container never sees a half-written file.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace skiff::agent::network {

// spec.hostAliases[i].
struct HostAlias {
  std::string ip;
  std::vector<std::string> hostnames;
};

struct PodHostsConfig {
  std::string pod_ip;    // status.podIP; no pod line when empty
  std::string hostname;  // the pod's hostname (spec.hostname or the pod name)
  // With spec.subdomain set the pod line also names "<hostname>.<subdomain>.<namespace>.svc.
  // <cluster domain>", first, as the kubelet writes it.
  std::string subdomain;
  std::string pod_namespace;
  std::string cluster_domain = "cluster.local";
  std::vector<HostAlias> host_aliases;
  // hostNetwork pods see the host's file (`host_hosts_file`) plus their host aliases.
  bool host_network = false;
  std::string host_hosts_file = "/etc/hosts";
};

// The kubelet's layout: a header line, localhost and the IPv6 well-known names, the pod line
// ("<podIP>\t<fqdn>\t<hostname>"), then "# Entries added by HostAliases." and one line per
// alias. Internal when a hostNetwork pod's host file cannot be read.
Result<std::string> render_hosts_file(const PodHostsConfig& config);

// A dnsConfig option: "ndots" with value "5", or "edns0" without one.
struct DnsOption {
  std::string name;
  std::optional<std::string> value;
};

// spec.dnsConfig.
struct PodDnsConfig {
  std::vector<std::string> nameservers;
  std::vector<std::string> searches;
  std::vector<DnsOption> options;
};

struct PodResolvConfig {
  // spec.dnsPolicy: "ClusterFirst" (the default when empty), "ClusterFirstWithHostNet",
  // "Default" or "None".
  std::string dns_policy;
  bool host_network = false;
  std::string pod_namespace;
  std::string cluster_dns;  // the cluster DNS service IP, e.g. "10.43.0.10"
  std::string cluster_domain = "cluster.local";
  std::optional<PodDnsConfig> dns_config;
  std::string host_resolv_conf = "/etc/resolv.conf";  // what policy Default starts from
};

// The pod's resolv.conf, following the kubelet:
//  - ClusterFirst (and ClusterFirstWithHostNet): "nameserver <cluster DNS>", "search
//    <ns>.svc.<domain> svc.<domain> <domain>", "options ndots:5". A hostNetwork pod with
//    ClusterFirst, or any pod when no cluster DNS is configured, falls back to Default.
//  - Default: the host's nameservers, search domains and options.
//  - None: only what dnsConfig says.
// dnsConfig is merged in for every policy: nameservers and searches appended (duplicates
// dropped), options overriding by name. At most 3 nameservers and 32 search domains are kept.
// Invalid for an unknown policy or None without dnsConfig; Internal when the host's file
// cannot be read for Default.
Result<std::string> render_resolv_conf(const PodResolvConfig& config);

// Writes `content` to `path` atomically (a temporary file beside it, fsync unless !sync,
// rename), mode 0644. Internal with the failing step and errno.
Status write_file_atomically(const std::string& path, const std::string& content,
                             bool sync = true);

// Replaces the content of the existing file `path` in place: same inode, so that a bind
// mount of the file shows the new content. Readers may see a partial file meanwhile, so this
// is for files nobody reads yet (a container's /etc/hosts before the container starts).
// NotFound when the file does not exist; Internal with the failing step and errno otherwise.
Status overwrite_file_in_place(const std::string& path, const std::string& content);

// The files written by write_pod_dns_files.
struct PodDnsFiles {
  std::string hosts;        // <pod dir>/etc-hosts
  std::string resolv_conf;  // <pod dir>/resolv.conf
  std::string hostname;     // <pod dir>/hostname
};

// Renders and writes the three files into `pod_dir` (created if missing). Errors as above.
Result<PodDnsFiles> write_pod_dns_files(const std::string& pod_dir, const PodHostsConfig& hosts,
                                        const PodResolvConfig& resolv);

// Renders the hosts file and writes it over <pod_dir>/etc-hosts in place (see
// overwrite_file_in_place), for containers created before the pod had its IP. Errors as above.
Status update_pod_hosts_file(const std::string& pod_dir, const PodHostsConfig& hosts);

}  // namespace skiff::agent::network
