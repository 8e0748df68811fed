// The service proxy's desired state, computed without side effects: Services and
// EndpointSlices in, the nftables ruleset of table `ip skiff` out (kube-proxy's nftables mode,
// IPv4 only).
//
// Traffic to a ClusterIP, an external IP or a load-balancer IP (ip daddr . proto . port, map
// service-ips) and to a NodePort on one of the node's addresses (map service-nodeports) goes
// to a per-service-port chain that picks one endpoint with `numgen random mod N` and DNATs to
// it in a per-endpoint chain. Only ready endpoints are used; when a port has none, its
// serving-and-terminating endpoints are (as kube-proxy does). A port with no usable endpoint
// is rejected (ICMP port unreachable) by the filter chains instead. Headless services,
// ExternalName services and services without a cluster IP get no rules.
//
// Masquerading follows kube-proxy: traffic to a ClusterIP from outside the cluster CIDR,
// traffic arriving through a NodePort or external IP (externalTrafficPolicy Cluster), and
// hairpin traffic (an endpoint reaching itself through its service) is source-NATed.
// sessionAffinity ClientIP keeps each client on the endpoint it last used, for
// timeoutSeconds (default 10800), through per-endpoint dynamic sets.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "client/client.h"

namespace skiff::proxy {

// One endpoint address of a service port.
struct Endpoint {
  std::string ip;
  int port = 0;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string node_name;  // where the endpoint runs; empty when unknown
  bool operator==(const Endpoint&) const = default;
};

// One port of one Service, with the endpoints its traffic may go to.
struct ServicePort {
  std::string ns;
  std::string name;       // the Service's name
  std::string port_name;  // spec.ports[].name; may be empty for a single-port service
  std::string protocol;   // "tcp", "udp" or "sctp"
  std::string cluster_ip;
  std::vector<std::string> external_ips;  // spec.externalIPs and status.loadBalancer ingress IPs
  int port = 0;
  int node_port = 0;                   // 0: none
  bool external_policy_local = false;  // externalTrafficPolicy: Local
  int affinity_timeout_seconds = 0;    // > 0: sessionAffinity ClientIP
  // The endpoints in use: the ready ones or, when none is ready, the serving terminating ones;
  // without duplicates, ordered by ip then port.
  std::vector<Endpoint> endpoints;
  bool operator==(const ServicePort&) const = default;
};

struct RulesetOptions {
  // This node, for externalTrafficPolicy Local (only endpoints on this node take external
  // traffic). Empty: every endpoint counts as local.
  std::string node_name;
  // The addresses NodePorts are served on. Empty: every local address except 127.0.0.0/8.
  std::vector<std::string> node_ips;
  // The pod network. Traffic to a ClusterIP from outside it is masqueraded; empty: none is
  // (hairpin and external traffic still are).
  std::string cluster_cidr;
  // The nftables table (family ip) the rules live in; one per node, so that several nodes in
  // one network namespace keep apart.
  std::string table = "skiff";
};

// The service ports the proxy serves, ordered by namespace, service name and port name.
// Services that are headless (clusterIP None), ExternalName, or without a valid IPv4 cluster
// IP yield none; ports with an invalid number or protocol are skipped. Endpoints come from
// IPv4 slices labelled kubernetes.io/service-name=<service> in the service's namespace, by
// matching the slice port's name and protocol to the service port's (slice ports carry the
// target port already resolved, so a named targetPort may resolve differently per slice).
// Endpoint conditions follow the EndpointSlice API: ready absent means ready, serving absent
// means the value of ready, terminating absent means false.
std::vector<ServicePort> service_ports(const std::vector<client::ObjectPtr>& services,
                                       const std::vector<client::ObjectPtr>& slices);

// The nftables script (for `nft -f -`) that replaces table `ip <options.table>` with the rules for
// `ports`, atomically: it creates the table if missing, deletes it and defines it anew in one
// transaction. The same input always gives the same text. Never fails: addresses that are not
// IPv4 and names nftables would not accept are left out or rewritten.
std::string render_ruleset(const std::vector<ServicePort>& ports, const RulesetOptions& options);

// service_ports then render_ruleset.
std::string desired_ruleset(const std::vector<client::ObjectPtr>& services,
                            const std::vector<client::ObjectPtr>& slices,
                            const RulesetOptions& options);

// The script that removes table `ip <table>` (and succeeds when it does not exist).
std::string delete_ruleset(const std::string& table = "skiff");

// The family of the proxy's tables.
inline constexpr const char* kTableFamily = "ip";

}  // namespace skiff::proxy
