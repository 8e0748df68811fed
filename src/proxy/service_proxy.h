// ServiceProxy: the node's service proxy. It watches Services and EndpointSlices through the
// shared informers and keeps nftables table `ip skiff` equal to desired_ruleset() of what it
// sees (see ruleset.h for the rules), replacing the whole table atomically with `nft -f -`.
//
// Changes are coalesced: after an event the proxy waits min_sync_interval for more, and never
// applies twice within min_sync_interval, so a burst of updates costs one apply. A ruleset
// equal to the one last applied is not applied again. A failed apply is retried with capped
// exponential back-off. Nothing is applied before both informers have synced, so a restarting
// proxy never replaces working rules with an empty table. stop() leaves the rules in place
// (traffic keeps flowing while the agent restarts); cleanup() removes them.
//
// Thread-safety: every method is thread-safe. The proxy works on a thread of its own;
// informer handlers only mark it dirty.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/informer.h"
#include "common/status.h"
#include "proxy/nft.h"

namespace skiff::proxy {

struct ProxyOptions {
  // This node: its NodePort addresses come from its Node object's InternalIP and ExternalIP
  // addresses when node_ips is empty, and externalTrafficPolicy Local uses its endpoints.
  std::string node_name;
  // Where NodePorts are served. Empty: the Node's addresses, or (no Node known) every local
  // address except 127.0.0.0/8.
  std::vector<std::string> node_ips;
  // The pod network; traffic from outside it to a ClusterIP is masqueraded.
  std::string cluster_cidr = "10.42.0.0/16";
  // The nftables table (family ip) of this node's rules.
  std::string table = "skiff";
  std::string nft_binary = "nft";
  // A network namespace (under /var/run/netns) to apply in; empty: the agent's own.
  std::string netns;
  std::chrono::milliseconds min_sync_interval{100};
  // First retry delay after a failed apply; doubles up to max_retry_interval.
  std::chrono::milliseconds retry_interval{500};
  std::chrono::milliseconds max_retry_interval{30000};
  // Null: an NftApplier for nft_binary and netns. Tests inject a recorder.
  std::shared_ptr<RulesetApplier> applier;
};

class ServiceProxy {
 public:
  // `informers` must outlive the proxy. The proxy uses its Services and EndpointSlices
  // informers (all namespaces), and `client` to read this node's addresses.
  ServiceProxy(client::Client& client, client::InformerFactory& informers, ProxyOptions options);
  ~ServiceProxy();  // stop()
  ServiceProxy(const ServiceProxy&) = delete;
  ServiceProxy& operator=(const ServiceProxy&) = delete;

  // Registers with the informers, starts them if they are not running, and starts syncing.
  // Idempotent; a stopped proxy stays stopped.
  void start();
  // Stops syncing and waits for an apply in progress. Idempotent. Leaves the rules in place.
  void stop();
  // Removes table `ip skiff`. REQUIRES: stopped (or never started), else the next sync puts
  // it back.
  Status cleanup();

  struct SyncState {
    uint64_t applies = 0;   // successful applies
    uint64_t failures = 0;  // failed applies
    std::string ruleset;    // the last script applied successfully
    Status last_status;     // of the last attempt
  };
  SyncState sync_state() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::proxy
