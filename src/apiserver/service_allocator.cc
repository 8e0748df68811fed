#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <random>

#include "apiserver/server_context.h"

namespace skiff::apiserver {

using nlohmann::json;

namespace {

constexpr int kNodePortMin = 30000;
constexpr int kNodePortMax = 32767;

bool parse_ipv4(const std::string& text, uint32_t* out) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

std::string format_ipv4(uint32_t ip) {
  in_addr a{};
  a.s_addr = htonl(ip);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

}  // namespace

std::string object_key(const api::ResourceDef& def, const std::string& ns,
                       const std::string& name) {
  std::string k = "/registry/" + def.storage_group() + "/" + def.resource + "/";
  if (def.namespaced()) k += ns + "/";
  return k + name;
}

std::string resource_prefix(const api::ResourceDef& def, const std::string& ns) {
  std::string k = "/registry/" + def.storage_group() + "/" + def.resource + "/";
  if (def.namespaced() && !ns.empty()) k += ns + "/";
  return k;
}

ServiceAllocator::ServiceAllocator(const std::string& cidr, WatchCache& cache) : cache_(cache) {
  size_t slash = cidr.find('/');
  uint32_t base = 0;
  int bits = slash == std::string::npos ? -1 : std::atoi(cidr.c_str() + slash + 1);
  if (slash == std::string::npos || !parse_ipv4(cidr.substr(0, slash), &base) || bits < 8 ||
      bits > 30) {
    cidr_status_ = Status::Invalid("--service-cidr " + cidr +
                                   ": want an IPv4 network with a prefix of /8 to /30, e.g. "
                                   "10.43.0.0/16");
    return;
  }
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  base_ = base & mask;
  size_ = uint32_t{1} << (32 - bits);
}

std::string ServiceAllocator::nth_ip(uint32_t n) const { return format_ipv4(base_ + n); }

bool ServiceAllocator::in_range(const std::string& ip) const {
  uint32_t v = 0;
  if (!parse_ipv4(ip, &v)) return false;
  // The network and broadcast addresses are never handed out.
  return v > base_ && v < base_ + size_ - 1;
}

void ServiceAllocator::collect_used(std::set<uint32_t>* ips, std::set<int>* ports) const {
  auto services = cache_.list("/registry/core/services/", nullptr, 0);
  for (const auto& o : services.items) {
    json svc = json::parse(*o->json, nullptr, false);
    if (!svc.is_object()) continue;
    json spec = svc.value("spec", json::object());
    uint32_t v = 0;
    if (parse_ipv4(spec.value("clusterIP", ""), &v)) ips->insert(v);
    if (auto p = spec.find("ports"); p != spec.end() && p->is_array()) {
      for (const auto& port : *p) {
        if (port.value("nodePort", 0) > 0) ports->insert(port.value("nodePort", 0));
      }
    }
  }
}

Result<std::string> ServiceAllocator::allocate_ip(const std::string& wanted) {
  if (!cidr_status_.ok()) return cidr_status_;
  std::set<uint32_t> used;
  std::set<int> ports;
  collect_used(&used, &ports);
  std::lock_guard<std::mutex> lock(mu_);
  // Reservations the cache now shows as used are settled; the rest stay held.
  for (auto it = pending_ips_.begin(); it != pending_ips_.end();) {
    it = used.count(*it) ? pending_ips_.erase(it) : std::next(it);
  }
  if (!wanted.empty()) {
    uint32_t v = 0;
    if (!parse_ipv4(wanted, &v)) return Status::Invalid("must be a valid IP address");
    if (!in_range(wanted)) {
      return Status::Invalid("failed to allocate IP " + wanted +
                             ": provided IP is not in the valid range. The range of valid IPs "
                             "is " + format_ipv4(base_) + "/" +
                             std::to_string(32 - __builtin_ctz(size_)));
    }
    if (used.count(v) || pending_ips_.count(v)) {
      return Status::Invalid("failed to allocate IP " + wanted + ": provided IP is already allocated");
    }
    pending_ips_.insert(v);
    return wanted;
  }
  // Dynamic allocation starts above the addresses kept for well-known services (.1 for the
  // API server, .10 for cluster DNS), like Kubernetes' lower band reservation.
  uint32_t first = size_ > 64 ? 16 : 2;
  for (uint32_t i = first; i + 1 < size_; ++i) {
    uint32_t v = base_ + i;
    if (!used.count(v) && !pending_ips_.count(v)) {
      pending_ips_.insert(v);
      return format_ipv4(v);
    }
  }
  for (uint32_t i = 2; i < first && i + 1 < size_; ++i) {
    uint32_t v = base_ + i;
    if (i == 10) continue;
    if (!used.count(v) && !pending_ips_.count(v)) {
      pending_ips_.insert(v);
      return format_ipv4(v);
    }
  }
  return Status::Internal("failed to allocate a serviceIP: range is full");
}

Result<int> ServiceAllocator::allocate_node_port(int wanted) {
  std::set<uint32_t> ips;
  std::set<int> used;
  collect_used(&ips, &used);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = pending_ports_.begin(); it != pending_ports_.end();) {
    it = used.count(*it) ? pending_ports_.erase(it) : std::next(it);
  }
  if (wanted != 0) {
    if (wanted < kNodePortMin || wanted > kNodePortMax) {
      return Status::Invalid("provided port is not in the valid range. The range of valid ports "
                             "is 30000-32767");
    }
    if (used.count(wanted) || pending_ports_.count(wanted)) {
      return Status::Invalid("provided port is already allocated");
    }
    pending_ports_.insert(wanted);
    return wanted;
  }
  static thread_local std::mt19937 rng{std::random_device{}()};
  int span = kNodePortMax - kNodePortMin + 1;
  int start = static_cast<int>(rng() % static_cast<unsigned>(span));
  for (int i = 0; i < span; ++i) {
    int p = kNodePortMin + (start + i) % span;
    if (!used.count(p) && !pending_ports_.count(p)) {
      pending_ports_.insert(p);
      return p;
    }
  }
  return Status::Internal("range is full");
}

}  // namespace skiff::apiserver
