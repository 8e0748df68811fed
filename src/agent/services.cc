// The node's service proxy and cluster DNS (see services.h).
#include "agent/services.h"

#include <arpa/inet.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include "client/client.h"
#include "client/informer.h"
#include "common/log.h"
#include "dns/dns_server.h"
#include "proxy/nft.h"
#include "proxy/ruleset.h"
#include "proxy/service_proxy.h"

namespace skiff::agent {

namespace {

constexpr const char* kBridgeNfCallIptables = "/proc/sys/net/bridge/bridge-nf-call-iptables";

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

// Interface names as the kernel takes them, and safe inside an nftables string and identifier.
bool valid_interface_name(const std::string& s) {
  if (s.empty() || s.size() > 15) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string delete_table_script(const std::string& table) {
  return "table ip " + table + "\ndelete table ip " + table + "\n";
}

// Replies to a pod's query to a ClusterIP come straight back over the bridge when the endpoint
// is on the same bridge; only with bridged IPv4 traffic passing the netfilter hooks does the
// DNAT get undone on them (kube-proxy requires the same).
void ensure_bridged_traffic_is_filtered() {
  std::ifstream in(kBridgeNfCallIptables);
  std::string value;
  if (!(in >> value)) {
    SKIFF_LOG(Warn) << "service proxy: " << kBridgeNfCallIptables
                    << " is missing (module br_netfilter not loaded); replies from endpoints on "
                       "the same bridge will not be translated back";
    return;
  }
  if (value == "1") return;
  std::ofstream out(kBridgeNfCallIptables);
  out << "1\n";
  out.flush();
  if (!out) SKIFF_LOG(Warn) << "service proxy: cannot set " << kBridgeNfCallIptables << " to 1";
}

}  // namespace

std::string dns_redirect_ruleset(const std::string& table, const std::string& bridge,
                                 const std::string& cluster_dns, uint16_t dns_port) {
  const std::string port = std::to_string(dns_port);
  const std::string match = "iifname \"" + bridge + "\" ip daddr " + cluster_dns;
  std::ostringstream s;
  s << "table ip " << table << "\n"
    << "delete table ip " << table << "\n"
    << "table ip " << table
    << " {\n"
    // Before the service proxy's DNAT (priority dstnat), which would otherwise see the
    // kube-dns Service without endpoints.
    << "\tchain prerouting {\n"
    << "\t\ttype nat hook prerouting priority dstnat - 10; policy accept;\n"
    << "\t\t" << match << " udp dport 53 redirect to :" << port << "\n"
    << "\t\t" << match << " tcp dport 53 redirect to :" << port << "\n"
    << "\t}\n"
    << "\tchain input {\n"
    << "\t\ttype filter hook input priority filter - 10; policy accept;\n"
    << "\t\tiifname != { \"" << bridge << "\", \"lo\" } meta l4proto { tcp, udp } th dport " << port
    << " drop\n"
    << "\t}\n"
    << "}\n";
  return s.str();
}

struct NodeServices::Impl {
  Impl(client::Client& c, NodeServicesOptions o) : client(c), options(std::move(o)) {
    proxy_table = "skiff-" + options.bridge_name;
    dns_table = "skiff-dns-" + options.bridge_name;
  }

  Status start_locked();
  void stop_locked();

  // Constant after construction.
  client::Client& client;
  const NodeServicesOptions options;
  std::string proxy_table;
  std::string dns_table;

  std::mutex mu;  // serializes start() and stop()
  bool started = false;
  bool stopped = false;
  Status start_status;
  // Set by start(), then constant until stop().
  std::shared_ptr<proxy::NftApplier> nft;
  std::unique_ptr<client::InformerFactory> own_informers;
  client::InformerFactory* informers = nullptr;  // own_informers or the caller's
  std::unique_ptr<dns::DnsServer> dns;
  std::unique_ptr<proxy::ServiceProxy> proxy;
  bool dns_rules = false;
  uint16_t dns_port = 0;
};

NodeServices::NodeServices(client::Client& client, NodeServicesOptions options)
    : impl_(std::make_unique<Impl>(client, std::move(options))) {}

NodeServices::~NodeServices() { stop(); }

Status NodeServices::start() {
  std::lock_guard<std::mutex> l(impl_->mu);
  if (impl_->started) return impl_->start_status;
  impl_->started = true;
  impl_->start_status = impl_->start_locked();
  if (!impl_->start_status.ok()) impl_->stop_locked();
  return impl_->start_status;
}

void NodeServices::stop() {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->stop_locked();
}

Status NodeServices::Impl::start_locked() {
  if (stopped) return Status::Invalid("node services were stopped");
  if (options.node_name.empty()) return Status::Invalid("node services need a node name");
  if (!valid_interface_name(options.bridge_name)) {
    return Status::Invalid("bridge name \"" + options.bridge_name +
                           "\": want 1-15 letters, digits, '-', '_' or '.'");
  }
  const bool want_dns = options.run_dns && !options.cluster_dns.empty();
  if (want_dns && !is_ipv4(options.cluster_dns)) {
    return Status::Invalid("cluster DNS address \"" + options.cluster_dns + "\" is not IPv4");
  }
  nft = std::make_shared<proxy::NftApplier>(options.nft_binary, "");
  if (options.informers != nullptr) {
    informers = options.informers;
  } else {
    own_informers = std::make_unique<client::InformerFactory>(client);
    informers = own_informers.get();
  }

  if (want_dns) {
    dns::DnsOptions d;
    d.address = "0.0.0.0";
    d.port = 0;
    d.cluster_domain = options.cluster_domain;
    // As K3s's CoreDNS (`pods insecure`): no cluster-wide pod watch on every node.
    d.pods = dns::PodRecords::kInsecure;
    d.upstreams = options.dns_upstreams;
    d.resolv_conf = options.resolv_conf;
    dns = std::make_unique<dns::DnsServer>(*informers, d);
    Status s = dns->start();
    if (!s.ok()) return s;
    dns_port = dns->port();
    dns_rules = true;
    s = nft->apply(
        dns_redirect_ruleset(dns_table, options.bridge_name, options.cluster_dns, dns_port));
    if (!s.ok()) return s;
  }

  if (options.run_proxy) {
    ensure_bridged_traffic_is_filtered();
    proxy::ProxyOptions p;
    p.node_name = options.node_name;
    p.cluster_cidr = options.cluster_cidr;
    p.nft_binary = options.nft_binary;
    p.table = proxy_table;
    p.applier = nft;
    proxy = std::make_unique<proxy::ServiceProxy>(client, *informers, p);
    proxy->start();
  }
  informers->start();
  SKIFF_LOG(Info) << "node services on bridge " << options.bridge_name << ": proxy "
                  << (proxy ? "table ip " + proxy_table : std::string("off")) << ", DNS "
                  << (dns ? options.cluster_dns + ":53 -> port " + std::to_string(dns_port)
                          : std::string("off"));
  return Status::Ok();
}

void NodeServices::Impl::stop_locked() {
  if (stopped) return;
  stopped = true;
  if (proxy) {
    proxy->stop();
    Status s = proxy->cleanup();
    if (!s.ok()) SKIFF_LOG(Warn) << "removing table ip " << proxy_table << ": " << s.to_string();
  }
  if (dns_rules) {
    Status s = nft->apply(delete_table_script(dns_table));
    if (!s.ok()) SKIFF_LOG(Warn) << "removing table ip " << dns_table << ": " << s.to_string();
  }
  if (dns) dns->stop();
  if (own_informers) own_informers->stop();
}

uint16_t NodeServices::dns_port() const { return impl_->dns_port; }
std::string NodeServices::proxy_table() const { return impl_->proxy_table; }
std::string NodeServices::dns_table() const { return impl_->dns_table; }

uint64_t NodeServices::proxy_applies() const {
  return impl_->proxy ? impl_->proxy->sync_state().applies : 0;
}

}  // namespace skiff::agent
