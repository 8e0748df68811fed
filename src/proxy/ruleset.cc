#include "proxy/ruleset.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

namespace skiff::proxy {

namespace {

using nlohmann::json;

constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
constexpr int kDefaultAffinityTimeout = 10800;
// Longest readable part of a chain or set name; the kernel allows 255 characters.
constexpr size_t kMaxReadableName = 200;

const json* find(const json& obj, std::initializer_list<std::string_view> path) {
  const json* cur = &obj;
  for (std::string_view key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string string_at(const json& obj, std::initializer_list<std::string_view> path) {
  const json* v = find(obj, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

int64_t int_at(const json& obj, std::initializer_list<std::string_view> path, int64_t def) {
  const json* v = find(obj, path);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : def;
}

// A condition of an endpoint: absent (or not a boolean) gives `def`.
bool condition(const json& endpoint, std::string_view name, bool def) {
  const json* v = find(endpoint, {"conditions", name});
  return v != nullptr && v->is_boolean() ? v->get<bool>() : def;
}

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

// "10.42.0.0/16" with a valid address and a prefix of 0-32.
bool is_ipv4_cidr(const std::string& s) {
  size_t slash = s.find('/');
  if (slash == std::string::npos || !is_ipv4(s.substr(0, slash))) return false;
  std::string bits = s.substr(slash + 1);
  if (bits.empty() || bits.size() > 2) return false;
  for (char c : bits) {
    if (c < '0' || c > '9') return false;
  }
  return std::stoi(bits) <= 32;
}

// "TCP" -> "tcp"; empty for a protocol the proxy does not handle.
std::string protocol_name(const std::string& p) {
  if (p.empty() || p == "TCP") return "tcp";
  if (p == "UDP") return "udp";
  if (p == "SCTP") return "sctp";
  return "";
}

bool valid_port(int64_t p) { return p > 0 && p <= 65535; }

// Orders IPv4 addresses numerically, so that 10.0.0.9 comes before 10.0.0.10.
uint32_t ipv4_value(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return 0;
  return ntohl(a.s_addr);
}

bool endpoint_less(const Endpoint& a, const Endpoint& b) {
  uint32_t av = ipv4_value(a.ip), bv = ipv4_value(b.ip);
  if (av != bv) return av < bv;
  return a.port < b.port;
}

// The endpoints of one service port across its slices.
std::vector<Endpoint> port_endpoints(const std::vector<const json*>& slices,
                                     const std::string& port_name, const std::string& protocol) {
  std::map<std::pair<std::string, int>, Endpoint> all;
  for (const json* slice : slices) {
    const json* ports = find(*slice, {"ports"});
    if (ports == nullptr || !ports->is_array()) continue;
    int port = 0;
    for (const json& sp : *ports) {
      if (string_at(sp, {"name"}) != port_name) continue;
      if (protocol_name(string_at(sp, {"protocol"})) != protocol) continue;
      int64_t n = int_at(sp, {"port"}, 0);
      if (valid_port(n)) port = static_cast<int>(n);
      break;
    }
    if (port == 0) continue;
    const json* endpoints = find(*slice, {"endpoints"});
    if (endpoints == nullptr || !endpoints->is_array()) continue;
    for (const json& e : *endpoints) {
      const json* addrs = find(e, {"addresses"});
      // kube-proxy uses the first address of an endpoint: the others are the same pod's.
      if (addrs == nullptr || !addrs->is_array() || addrs->empty() || !(*addrs)[0].is_string()) {
        continue;
      }
      Endpoint ep;
      ep.ip = (*addrs)[0].get<std::string>();
      if (!is_ipv4(ep.ip)) continue;
      ep.port = port;
      ep.ready = condition(e, "ready", true);
      ep.serving = condition(e, "serving", ep.ready);
      ep.terminating = condition(e, "terminating", false);
      ep.node_name = string_at(e, {"nodeName"});
      auto key = std::make_pair(ep.ip, ep.port);
      auto it = all.find(key);
      // The same address in two slices (during a slice handover): the more ready one wins.
      if (it == all.end() || (ep.ready && !it->second.ready)) all[key] = std::move(ep);
    }
  }
  std::vector<Endpoint> ready, serving_terminating;
  for (auto& [key, ep] : all) {
    if (ep.ready) {
      ready.push_back(ep);
    } else if (ep.serving && ep.terminating) {
      serving_terminating.push_back(ep);
    }
  }
  std::vector<Endpoint> out = ready.empty() ? std::move(serving_terminating) : std::move(ready);
  std::sort(out.begin(), out.end(), endpoint_less);
  return out;
}

// --- names ----------------------------------------------------------------------------------

// Eight base32 characters of a 64-bit FNV-1a hash: keeps names unique when the readable part
// is rewritten or cut.
std::string short_hash(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += kAlphabet[h & 31];
    h >>= 5;
  }
  return out;
}

// Only the characters nftables accepts inside an identifier, and not too long.
std::string readable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxReadableName)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '-' || c == '_' || c == '.';
    out += ok ? c : '_';
  }
  return out;
}

// "HASH-ns/name/tcp/port": the part of every name that belongs to one service port.
std::string port_id(const ServicePort& p) {
  std::string full = p.ns + "/" + p.name + "/" + p.protocol + "/" + p.port_name;
  return short_hash(full) + "-" + readable(full);
}

std::string endpoint_suffix(const ServicePort& p, const Endpoint& e) {
  std::string full = p.ns + "/" + p.name + "/" + p.protocol + "/" + p.port_name + "__" + e.ip +
                     "/" + std::to_string(e.port);
  return short_hash(full) + "-" + readable(full);
}

std::string service_chain(const ServicePort& p) { return "service-" + port_id(p); }
std::string external_chain(const ServicePort& p) { return "external-" + port_id(p); }
std::string endpoint_chain(const ServicePort& p, const Endpoint& e) {
  return "endpoint-" + endpoint_suffix(p, e);
}
std::string affinity_set(const ServicePort& p, const Endpoint& e) {
  return "affinity-" + endpoint_suffix(p, e);
}

// --- text -----------------------------------------------------------------------------------

class Writer {
 public:
  void line(int indent, const std::string& text) {
    out_.append(static_cast<size_t>(indent), '\t');
    out_ += text;
    out_ += '\n';
  }
  void blank() { out_ += '\n'; }
  // A chain with its rules.
  void chain(const std::string& name, const std::string& hook,
             const std::vector<std::string>& rules) {
    line(1, "chain " + name + " {");
    if (!hook.empty()) line(2, hook);
    for (const auto& r : rules) line(2, r);
    line(1, "}");
  }
  // A map (or set, when `value_type` is empty) with its elements, one per line.
  void map(const std::string& kind, const std::string& name, const std::string& type,
           const std::vector<std::string>& extra, const std::vector<std::string>& elements) {
    line(1, kind + " " + name + " {");
    line(2, "type " + type);
    for (const auto& e : extra) line(2, e);
    if (!elements.empty()) {
      line(2, "elements = {");
      for (size_t i = 0; i < elements.size(); ++i) {
        line(3, elements[i] + (i + 1 < elements.size() ? "," : ""));
      }
      line(2, "}");
    }
    line(1, "}");
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Rules that send a packet to one of `endpoints` (non-empty): the endpoint a client used last
// when affinity applies, else one at random.
std::vector<std::string> balance(const ServicePort& p, const std::vector<Endpoint>& endpoints) {
  std::vector<std::string> rules;
  if (p.affinity_timeout_seconds > 0) {
    for (const auto& e : endpoints) {
      rules.push_back("ip saddr @" + affinity_set(p, e) + " goto " + endpoint_chain(p, e));
    }
  }
  if (endpoints.size() == 1) {
    rules.push_back("goto " + endpoint_chain(p, endpoints[0]));
    return rules;
  }
  std::string vmap = "numgen random mod " + std::to_string(endpoints.size()) + " vmap { ";
  for (size_t i = 0; i < endpoints.size(); ++i) {
    if (i > 0) vmap += ", ";
    vmap += std::to_string(i) + " : goto " + endpoint_chain(p, endpoints[i]);
  }
  vmap += " }";
  rules.push_back(std::move(vmap));
  return rules;
}

bool has_external(const ServicePort& p) { return p.node_port > 0 || !p.external_ips.empty(); }

}  // namespace

std::vector<ServicePort> service_ports(const std::vector<client::ObjectPtr>& services,
                                       const std::vector<client::ObjectPtr>& slices) {
  std::map<std::string, std::vector<const json*>> slices_by_service;
  for (const auto& s : slices) {
    if (!s || !s->is_object()) continue;
    if (string_at(*s, {"addressType"}) != "IPv4") continue;
    std::string svc = string_at(*s, {"metadata", "labels", kServiceNameLabel});
    if (svc.empty()) continue;
    slices_by_service[string_at(*s, {"metadata", "namespace"}) + "/" + svc].push_back(s.get());
  }

  std::vector<ServicePort> out;
  for (const auto& s : services) {
    if (!s || !s->is_object()) continue;
    const json& svc = *s;
    std::string type = string_at(svc, {"spec", "type"});
    std::string cluster_ip = string_at(svc, {"spec", "clusterIP"});
    if (type == "ExternalName" || !is_ipv4(cluster_ip)) continue;
    std::string ns = string_at(svc, {"metadata", "namespace"});
    std::string name = string_at(svc, {"metadata", "name"});
    const json* ports = find(svc, {"spec", "ports"});
    if (ns.empty() || name.empty() || ports == nullptr || !ports->is_array()) continue;

    std::vector<std::string> external_ips;
    if (const json* ips = find(svc, {"spec", "externalIPs"}); ips != nullptr && ips->is_array()) {
      for (const json& ip : *ips) {
        if (ip.is_string() && is_ipv4(ip.get<std::string>())) {
          external_ips.push_back(ip.get<std::string>());
        }
      }
    }
    if (const json* ingress = find(svc, {"status", "loadBalancer", "ingress"});
        ingress != nullptr && ingress->is_array()) {
      for (const json& i : *ingress) {
        std::string ip = string_at(i, {"ip"});
        if (is_ipv4(ip)) external_ips.push_back(ip);
      }
    }
    std::sort(external_ips.begin(), external_ips.end());
    external_ips.erase(std::unique(external_ips.begin(), external_ips.end()), external_ips.end());

    int affinity = 0;
    if (string_at(svc, {"spec", "sessionAffinity"}) == "ClientIP") {
      int64_t t = int_at(svc, {"spec", "sessionAffinityConfig", "clientIP", "timeoutSeconds"},
                         kDefaultAffinityTimeout);
      affinity = t > 0 && t <= 86400 ? static_cast<int>(t) : kDefaultAffinityTimeout;
    }
    const bool node_ports = type == "NodePort" || type == "LoadBalancer";
    const auto& svc_slices = slices_by_service[ns + "/" + name];

    std::set<std::pair<std::string, int>> seen;
    for (const json& sp : *ports) {
      ServicePort p;
      p.ns = ns;
      p.name = name;
      p.port_name = string_at(sp, {"name"});
      p.protocol = protocol_name(string_at(sp, {"protocol"}));
      int64_t port = int_at(sp, {"port"}, 0);
      if (p.protocol.empty() || !valid_port(port)) continue;
      p.port = static_cast<int>(port);
      if (!seen.insert({p.protocol, p.port}).second) continue;
      p.cluster_ip = cluster_ip;
      p.external_ips = external_ips;
      int64_t node_port = int_at(sp, {"nodePort"}, 0);
      if (node_ports && valid_port(node_port)) p.node_port = static_cast<int>(node_port);
      p.external_policy_local = string_at(svc, {"spec", "externalTrafficPolicy"}) == "Local";
      p.affinity_timeout_seconds = affinity;
      p.endpoints = port_endpoints(svc_slices, p.port_name, p.protocol);
      out.push_back(std::move(p));
    }
  }
  std::sort(out.begin(), out.end(), [](const ServicePort& a, const ServicePort& b) {
    return std::tie(a.ns, a.name, a.port_name, a.protocol, a.port) <
           std::tie(b.ns, b.name, b.port_name, b.protocol, b.port);
  });
  return out;
}

std::string render_ruleset(const std::vector<ServicePort>& ports, const RulesetOptions& options) {
  std::vector<std::string> node_ips;
  for (const auto& ip : options.node_ips) {
    if (is_ipv4(ip)) node_ips.push_back(ip);
  }
  std::sort(node_ips.begin(), node_ips.end());
  node_ips.erase(std::unique(node_ips.begin(), node_ips.end()), node_ips.end());
  const std::string cidr = is_ipv4_cidr(options.cluster_cidr) ? options.cluster_cidr : "";
  // How a NodePort packet is recognised: addressed to one of the node's addresses.
  const std::string nodeport_match =
      node_ips.empty() ? "fib daddr type local ip daddr != 127.0.0.0/8" : "ip daddr @nodeport-ips";

  Writer w;
  // Creating the table first makes the deletion succeed when it does not exist yet; the three
  // commands are one transaction, so no packet ever sees a half-built table.
  const std::string table = std::string(kTableFamily) + " " + options.table;
  w.line(0, "table " + table);
  w.line(0, "delete table " + table);
  w.line(0, "table " + table + " {");

  // Sets first, then chains in dependency order (what is referenced comes first).
  if (!node_ips.empty()) {
    w.map("set", "nodeport-ips", "ipv4_addr", {}, node_ips);
  }
  for (const auto& p : ports) {
    if (p.affinity_timeout_seconds <= 0) continue;
    for (const auto& e : p.endpoints) {
      w.map(
          "set", affinity_set(p, e), "ipv4_addr",
          {"flags dynamic,timeout", "timeout " + std::to_string(p.affinity_timeout_seconds) + "s"},
          {});
    }
  }

  w.chain("reject-chain", "", {"reject"});
  w.chain("mark-for-masquerade", "", {"meta mark set meta mark | 0x00004000"});
  w.chain("masquerading", "",
          {"meta mark & 0x00004000 == 0x00000000 return", "meta mark set meta mark ^ 0x00004000",
           "masquerade fully-random"});

  std::vector<std::string> service_ips, service_nodeports, no_endpoint_services,
      no_endpoint_nodeports;
  for (const auto& p : ports) {
    const std::string proto_port = p.protocol + " . " + std::to_string(p.port);
    if (p.endpoints.empty()) {
      no_endpoint_services.push_back(p.cluster_ip + " . " + proto_port + " : goto reject-chain");
      for (const auto& ip : p.external_ips) {
        no_endpoint_services.push_back(ip + " . " + proto_port + " : goto reject-chain");
      }
      if (p.node_port > 0) {
        no_endpoint_nodeports.push_back(p.protocol + " . " + std::to_string(p.node_port) +
                                        " : goto reject-chain");
      }
      continue;
    }

    for (const auto& e : p.endpoints) {
      std::vector<std::string> rules;
      // Hairpin: an endpoint reaching itself must see the reply come from the service.
      rules.push_back("ip saddr " + e.ip + " jump mark-for-masquerade");
      if (p.affinity_timeout_seconds > 0) {
        rules.push_back("update @" + affinity_set(p, e) + " { ip saddr }");
      }
      rules.push_back("meta l4proto " + p.protocol + " dnat to " + e.ip + ":" +
                      std::to_string(e.port));
      w.chain(endpoint_chain(p, e), "", rules);
    }

    std::vector<std::string> rules;
    if (!cidr.empty()) {
      rules.push_back("ip daddr " + p.cluster_ip + " " + p.protocol + " dport " +
                      std::to_string(p.port) + " ip saddr != " + cidr +
                      " jump mark-for-masquerade");
    }
    for (auto& r : balance(p, p.endpoints)) rules.push_back(std::move(r));
    w.chain(service_chain(p), "", rules);

    if (has_external(p)) {
      std::vector<std::string> ext;
      if (!p.external_policy_local) {
        ext = {"jump mark-for-masquerade", "goto " + service_chain(p)};
      } else {
        // Local policy keeps the client's address and uses only this node's endpoints;
        // traffic from pods and from the node itself is treated as cluster traffic.
        if (!cidr.empty()) ext.push_back("ip saddr " + cidr + " goto " + service_chain(p));
        ext.push_back("fib saddr type local jump mark-for-masquerade");
        ext.push_back("fib saddr type local goto " + service_chain(p));
        std::vector<Endpoint> local;
        for (const auto& e : p.endpoints) {
          if (options.node_name.empty() || e.node_name == options.node_name) local.push_back(e);
        }
        if (local.empty()) {
          ext.push_back("drop");
        } else {
          for (auto& r : balance(p, local)) ext.push_back(std::move(r));
        }
      }
      w.chain(external_chain(p), "", ext);
    }

    service_ips.push_back(p.cluster_ip + " . " + proto_port + " : goto " + service_chain(p));
    for (const auto& ip : p.external_ips) {
      service_ips.push_back(ip + " . " + proto_port + " : goto " + external_chain(p));
    }
    if (p.node_port > 0) {
      service_nodeports.push_back(p.protocol + " . " + std::to_string(p.node_port) + " : goto " +
                                  external_chain(p));
    }
  }

  const std::string three = "ipv4_addr . inet_proto . inet_service : verdict";
  const std::string two = "inet_proto . inet_service : verdict";
  w.map("map", "service-ips", three, {}, service_ips);
  w.map("map", "service-nodeports", two, {}, service_nodeports);
  w.map("map", "no-endpoint-services", three, {}, no_endpoint_services);
  w.map("map", "no-endpoint-nodeports", two, {}, no_endpoint_nodeports);

  w.chain("services", "",
          {"ip daddr . meta l4proto . th dport vmap @service-ips",
           nodeport_match + " meta l4proto . th dport vmap @service-nodeports"});
  w.chain("service-endpoints-check", "",
          {"ip daddr . meta l4proto . th dport vmap @no-endpoint-services"});
  w.chain("nodeport-endpoints-check", "",
          {nodeport_match + " meta l4proto . th dport vmap @no-endpoint-nodeports"});

  w.chain("nat-prerouting", "type nat hook prerouting priority dstnat; policy accept;",
          {"jump services"});
  w.chain("nat-output", "type nat hook output priority -100; policy accept;", {"jump services"});
  w.chain("nat-postrouting", "type nat hook postrouting priority srcnat; policy accept;",
          {"jump masquerading"});
  // Before the DNAT chains, so that a port without endpoints is refused, not dropped later.
  w.chain(
      "filter-input", "type filter hook input priority -110; policy accept;",
      {"ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"});
  w.chain("filter-forward", "type filter hook forward priority -110; policy accept;",
          {"ct state new jump service-endpoints-check"});
  w.chain("filter-output", "type filter hook output priority -110; policy accept;",
          {"ct state new jump service-endpoints-check"});
  w.line(0, "}");
  return w.take();
}

std::string desired_ruleset(const std::vector<client::ObjectPtr>& services,
                            const std::vector<client::ObjectPtr>& slices,
                            const RulesetOptions& options) {
  return render_ruleset(service_ports(services, slices), options);
}

std::string delete_ruleset(const std::string& table) {
  const std::string t = std::string(kTableFamily) + " " + table;
  return "table " + t + "\n" + "delete table " + t + "\n";
}

}  // namespace skiff::proxy
