#include "dns/zone.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

namespace skiff::dns {

namespace {

using nlohmann::json;

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

bool parse_ipv4(const std::string& s, std::array<uint8_t, 4>* out) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  std::memcpy(out->data(), &a.s_addr, 4);
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// "TCP" -> "tcp", the form SRV names use.
std::string protocol_label(const std::string& p) { return p.empty() ? "tcp" : lower(p); }

struct Port {
  std::string name;
  std::string protocol;  // lower case
  uint16_t port = 0;
};

// A ready endpoint address of a service, with the ports its slice lists.
struct Endpoint {
  std::string ip;
  std::string label;  // its name in DNS: the hostname, else the address with dashes
  std::vector<Port> ports;
};

std::vector<Port> ports_of(const json* ports) {
  std::vector<Port> out;
  if (ports == nullptr || !ports->is_array()) return out;
  for (const json& p : *ports) {
    const json* n = find(p, {"port"});
    if (n == nullptr || !n->is_number_integer()) continue;
    int64_t v = n->get<int64_t>();
    if (v <= 0 || v > 65535) continue;
    out.push_back({string_at(p, {"name"}), protocol_label(string_at(p, {"protocol"})),
                   static_cast<uint16_t>(v)});
  }
  return out;
}

// The ready endpoints of a service, by address (an address in two slices appears once).
std::vector<Endpoint> ready_endpoints(const Catalog& catalog, const std::string& ns,
                                      const std::string& service) {
  std::map<std::string, Endpoint> by_ip;
  for (const auto& slice : catalog.endpoint_slices(ns, service)) {
    if (!slice || string_at(*slice, {"addressType"}) != "IPv4") continue;
    std::vector<Port> ports = ports_of(find(*slice, {"ports"}));
    const json* endpoints = find(*slice, {"endpoints"});
    if (endpoints == nullptr || !endpoints->is_array()) continue;
    for (const json& e : *endpoints) {
      const json* ready = find(e, {"conditions", "ready"});
      if (ready != nullptr && ready->is_boolean() && !ready->get<bool>()) continue;
      const json* addrs = find(e, {"addresses"});
      if (addrs == nullptr || !addrs->is_array()) continue;
      std::string hostname = string_at(e, {"hostname"});
      for (const json& a : *addrs) {
        if (!a.is_string()) continue;
        std::string ip = a.get<std::string>();
        std::array<uint8_t, 4> bytes{};
        if (!parse_ipv4(ip, &bytes)) continue;
        Endpoint& ep = by_ip[ip];
        if (ep.ip.empty()) {
          ep.ip = ip;
          ep.label = hostname;
          if (ep.label.empty()) {
            ep.label = ip;
            std::replace(ep.label.begin(), ep.label.end(), '.', '-');
          }
        }
        for (const auto& p : ports) {
          bool known = std::any_of(ep.ports.begin(), ep.ports.end(), [&](const Port& q) {
            return q.name == p.name && q.protocol == p.protocol && q.port == p.port;
          });
          if (!known) ep.ports.push_back(p);
        }
      }
    }
  }
  std::vector<Endpoint> out;
  for (auto& [ip, ep] : by_ip) out.push_back(std::move(ep));
  return out;
}

class Answerer {
 public:
  Answerer(const Question& q, const ZoneOptions& o, Resolution* r)
      : q_(q), o_(o), r_(r), zone_(name_from_text(lower(o.cluster_domain))) {}

  const Name& zone() const { return zone_; }

  void nxdomain() {
    r_->rcode = kNXDomain;
    r_->answers.clear();
    r_->additional.clear();
    r_->authority = {soa()};
  }
  void nodata() {
    r_->rcode = kNoError;
    r_->answers.clear();
    r_->additional.clear();
    r_->authority = {soa()};
  }
  bool wants(uint16_t type) const { return q_.type == type || q_.type == kTypeANY; }

  Record soa() const {
    Record r = base(zone_, kTypeSOA);
    r.target = child({"ns", "dns"});
    r.soa_rname = child({"hostmaster"});
    r.soa_serial = o_.soa_serial;
    r.soa_refresh = 7200;
    r.soa_retry = 1800;
    r.soa_expire = 86400;
    r.soa_minimum = o_.ttl;
    return r;
  }
  // `labels` followed by the zone: child({"web", "default", "svc"}).
  Name child(std::initializer_list<std::string> labels) const {
    Name n(labels);
    n.insert(n.end(), zone_.begin(), zone_.end());
    return n;
  }
  Record base(const Name& owner, uint16_t type) const {
    Record r;
    r.name = owner;
    r.type = type;
    r.ttl = o_.ttl;
    return r;
  }
  void answer_a(const Name& owner, const std::string& ip) { r_->answers.push_back(a(owner, ip)); }
  Record a(const Name& owner, const std::string& ip) const {
    Record r = base(owner, kTypeA);
    parse_ipv4(ip, &r.a);
    return r;
  }
  void answer_srv(uint16_t port, uint16_t weight, const Name& target) {
    Record r = base(q_.name, kTypeSRV);
    r.priority = 0;
    r.weight = weight;
    r.port = port;
    r.target = target;
    r_->answers.push_back(std::move(r));
  }
  void extra_a(const Name& owner, const std::string& ip) {
    for (const auto& rec : r_->additional) {
      if (rec.name == owner) return;
    }
    r_->additional.push_back(a(owner, ip));
  }
  Resolution& result() { return *r_; }
  const Question& question() const { return q_; }
  const ZoneOptions& options() const { return o_; }

 private:
  const Question& q_;
  const ZoneOptions& o_;
  Resolution* r_;
  const Name zone_;
};

uint16_t srv_weight(size_t count) {
  return static_cast<uint16_t>(std::max<size_t>(1, 100 / std::max<size_t>(1, count)));
}

void service_name(const Catalog& catalog, Answerer& w, const std::string& ns,
                  const std::string& name) {
  client::ObjectPtr svc = catalog.service(ns, name);
  if (!svc) return w.nxdomain();
  const Question& q = w.question();
  if (string_at(*svc, {"spec", "type"}) == "ExternalName") {
    std::string target = string_at(*svc, {"spec", "externalName"});
    if (target.empty()) return w.nxdomain();
    Record r = w.base(q.name, kTypeCNAME);
    r.target = name_from_text(target);
    w.result().answers.push_back(std::move(r));
    return;
  }
  const Name svc_name = w.child({name, ns, "svc"});
  std::string cluster_ip = string_at(*svc, {"spec", "clusterIP"});
  if (cluster_ip == "None") {
    auto endpoints = ready_endpoints(catalog, ns, name);
    if (endpoints.empty()) return w.nxdomain();
    if (w.wants(kTypeA)) {
      for (const auto& e : endpoints) w.answer_a(q.name, e.ip);
    }
    if (w.wants(kTypeSRV)) {
      size_t n = 0;
      for (const auto& e : endpoints) n += e.ports.size();
      for (const auto& e : endpoints) {
        Name target = w.child({e.label, name, ns, "svc"});
        for (const auto& p : e.ports) w.answer_srv(p.port, srv_weight(n), target);
        if (!e.ports.empty()) w.extra_a(target, e.ip);
      }
    }
    if (w.result().answers.empty()) w.nodata();
    return;
  }
  std::array<uint8_t, 4> bytes{};
  if (!parse_ipv4(cluster_ip, &bytes)) return w.nodata();
  if (w.wants(kTypeA)) w.answer_a(q.name, cluster_ip);
  if (w.wants(kTypeSRV)) {
    std::vector<Port> ports = ports_of(find(*svc, {"spec", "ports"}));
    for (const auto& p : ports) w.answer_srv(p.port, srv_weight(ports.size()), svc_name);
    if (!ports.empty()) w.extra_a(svc_name, cluster_ip);
  }
  if (w.result().answers.empty()) w.nodata();
}

void endpoint_name(const Catalog& catalog, Answerer& w, const std::string& ns,
                   const std::string& service, const std::string& label) {
  if (!catalog.service(ns, service)) return w.nxdomain();
  for (const auto& e : ready_endpoints(catalog, ns, service)) {
    if (lower(e.label) != label) continue;
    if (w.wants(kTypeA)) w.answer_a(w.question().name, e.ip);
    if (w.result().answers.empty()) w.nodata();
    return;
  }
  w.nxdomain();
}

void port_name(const Catalog& catalog, Answerer& w, const std::string& ns,
               const std::string& service, const std::string& port, const std::string& proto) {
  client::ObjectPtr svc = catalog.service(ns, service);
  if (!svc || string_at(*svc, {"spec", "type"}) == "ExternalName") return w.nxdomain();
  const bool srv = w.wants(kTypeSRV);
  auto matches = [&](const Port& p) { return lower(p.name) == port && p.protocol == proto; };
  std::string cluster_ip = string_at(*svc, {"spec", "clusterIP"});
  if (cluster_ip == "None") {
    auto endpoints = ready_endpoints(catalog, ns, service);
    size_t n = 0;
    for (const auto& e : endpoints) n += std::count_if(e.ports.begin(), e.ports.end(), matches);
    if (n == 0) return w.nxdomain();
    if (!srv) return w.nodata();
    for (const auto& e : endpoints) {
      Name target = w.child({e.label, service, ns, "svc"});
      bool any = false;
      for (const auto& p : e.ports) {
        if (!matches(p)) continue;
        w.answer_srv(p.port, srv_weight(n), target);
        any = true;
      }
      if (any) w.extra_a(target, e.ip);
    }
    return;
  }
  std::vector<Port> ports = ports_of(find(*svc, {"spec", "ports"}));
  std::vector<Port> found;
  std::copy_if(ports.begin(), ports.end(), std::back_inserter(found), matches);
  if (found.empty()) return w.nxdomain();
  if (!srv) return w.nodata();
  Name target = w.child({service, ns, "svc"});
  for (const auto& p : found) w.answer_srv(p.port, srv_weight(found.size()), target);
  std::array<uint8_t, 4> bytes{};
  if (parse_ipv4(cluster_ip, &bytes)) w.extra_a(target, cluster_ip);
}

void pod_name(const Catalog& catalog, Answerer& w, const std::string& ns,
              const std::string& dashed) {
  if (w.options().pods == PodRecords::kDisabled) return w.nxdomain();
  std::string ip = dashed;
  std::replace(ip.begin(), ip.end(), '-', '.');
  std::array<uint8_t, 4> bytes{};
  if (!parse_ipv4(ip, &bytes)) return w.nxdomain();
  if (w.options().pods == PodRecords::kVerified && !catalog.pod_has_ip(ns, ip)) {
    return w.nxdomain();
  }
  if (w.wants(kTypeA)) {
    w.answer_a(w.question().name, ip);
  } else {
    w.nodata();
  }
}

}  // namespace

Resolution resolve(const Catalog& catalog, const Question& question, const ZoneOptions& options) {
  Resolution result;
  Answerer w(question, options, &result);
  const Name labels = name_from_text(lookup_key(question.name));
  const Name& zone = w.zone();
  if (labels.size() < zone.size() ||
      !std::equal(zone.begin(), zone.end(), labels.end() - static_cast<long>(zone.size()))) {
    return result;
  }
  result.in_zone = true;
  const std::vector<std::string> rel(labels.begin(), labels.end() - static_cast<long>(zone.size()));
  if (rel.empty()) {
    if (w.wants(kTypeSOA)) result.answers.push_back(w.soa());
    if (w.wants(kTypeNS)) {
      Record ns = w.base(question.name, kTypeNS);
      ns.target = w.child({"ns", "dns"});
      result.answers.push_back(std::move(ns));
    }
    if (result.answers.empty()) w.nodata();
    return result;
  }
  const std::string& kind = rel.back();
  if (kind == "svc") {
    switch (rel.size()) {
      case 1:
        w.nodata();
        break;
      case 2:
        if (catalog.namespace_has_services(rel[0])) {
          w.nodata();
        } else {
          w.nxdomain();
        }
        break;
      case 3:
        service_name(catalog, w, rel[1], rel[0]);
        break;
      case 4:
        endpoint_name(catalog, w, rel[2], rel[1], rel[0]);
        break;
      case 5:
        if (rel[0].size() > 1 && rel[0][0] == '_' && rel[1].size() > 1 && rel[1][0] == '_') {
          port_name(catalog, w, rel[3], rel[2], rel[0].substr(1), rel[1].substr(1));
        } else {
          w.nxdomain();
        }
        break;
      default:
        w.nxdomain();
    }
    return result;
  }
  if (kind == "pod") {
    if (rel.size() <= 2) {
      w.nodata();
    } else if (rel.size() == 3) {
      pod_name(catalog, w, rel[1], rel[0]);
    } else {
      w.nxdomain();
    }
    return result;
  }
  w.nxdomain();
  return result;
}

}  // namespace skiff::dns
