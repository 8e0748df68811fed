// NodeServices: what makes Services work for the pods of one node, run by the node agent: the
// service proxy (proxy::ServiceProxy: ClusterIPs, NodePorts and external IPs to ready
// endpoints, in nftables) and the cluster DNS (dns::DnsServer: <svc>.<ns>.svc.<domain> and
// the rest of the cluster zone), both fed by informers of the agent's own client.
//
// The DNS server is node-local, as NodeLocal DNSCache is: every agent answers its own pods.
// It listens on a free port of the node, and queries that pods send to the cluster DNS
// address (the kube-dns Service's clusterIP, port 53, UDP and TCP) through their bridge are
// redirected to it; the port takes no traffic from other interfaces but loopback.
//
// Several agents may share one network namespace (a test host, or two pod bridges on one
// machine), so nothing is named host-wide; everything is keyed by the pod bridge, which is
// unique within a namespace:
//   table ip skiff-<bridge>       the service proxy's rules (see proxy/ruleset.h)
//   table ip skiff-dns-<bridge>   the DNS redirect for pods on <bridge>
// start() replaces what an earlier agent on the same bridge left, stop() removes both tables.
//
// Thread-safety: start() and stop() are thread-safe; the rest is read-only after start().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::client {
class Client;
class InformerFactory;
}

namespace skiff::agent {

struct NodeServicesOptions {
  std::string node_name;    // REQUIRED: this node (NodePort addresses, Local traffic policy)
  std::string bridge_name;  // REQUIRED: the pods' bridge
  // The pod network of the whole cluster: traffic to a ClusterIP from outside it is
  // masqueraded. Empty: nothing is masqueraded for being from outside.
  std::string cluster_cidr;
  // The cluster DNS address pods are given (the kube-dns Service's clusterIP); empty: no DNS.
  std::string cluster_dns = "10.43.0.10";
  std::string cluster_domain = "cluster.local";
  bool run_proxy = true;
  bool run_dns = true;
  // Where names outside the cluster domain go; empty: the nameservers of resolv_conf.
  std::vector<std::string> dns_upstreams;
  std::string resolv_conf = "/etc/resolv.conf";
  std::string nft_binary = "nft";
  // Informers shared with the caller, which must start and stop them too (the node's own
  // Service informer is then the proxy's and the DNS's); null: informers of its own.
  client::InformerFactory* informers = nullptr;
};

class NodeServices {
 public:
  // `client` must outlive this object.
  NodeServices(client::Client& client, NodeServicesOptions options);
  ~NodeServices();  // stop()
  NodeServices(const NodeServices&) = delete;
  NodeServices& operator=(const NodeServices&) = delete;

  // Starts the informers, the DNS server (and its redirect rules) and the proxy. The proxy
  // applies its rules once the informers have synced, and retries failed applies on its
  // own. Invalid for bad options; Unavailable when the DNS port cannot be bound or nft cannot
  // load the redirect. Idempotent: a second call returns the first one's status.
  Status start();
  // Stops the proxy and the DNS server and removes both tables. Idempotent.
  void stop();

  // The DNS server's port (on every address of the node); 0 when no DNS runs.
  uint16_t dns_port() const;
  // "skiff-<bridge>" and "skiff-dns-<bridge>" (family ip).
  std::string proxy_table() const;
  std::string dns_table() const;
  // Successful applies of the proxy's rules so far.
  uint64_t proxy_applies() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The nftables script (for `nft -f -`) that replaces table `ip <table>` with rules redirecting
// DNS queries (UDP and TCP to port 53) for `cluster_dns` arriving on `bridge` to local port
// `dns_port`, and dropping traffic to `dns_port` from interfaces other than `bridge` and lo.
std::string dns_redirect_ruleset(const std::string& table, const std::string& bridge,
                                 const std::string& cluster_dns, uint16_t dns_port);

}  // namespace skiff::agent
