#include "controllers/endpoints/endpoint_util.h"

#include "controllers/common/object_meta.h"
#include "controllers/common/pod_util.h"

namespace skiff::controllers::endpoints {

namespace {

namespace cc = ::skiff::controllers::common;

const json& at(const json& obj, std::initializer_list<std::string_view> path) {
  static const json kNull;
  const json* v = cc::find_path(obj, path);
  return v != nullptr ? *v : kNull;
}

std::string protocol_of(const json& port) {
  std::string p = cc::string_at(port, {"protocol"});
  return p.empty() ? "TCP" : p;
}

// The containerPort named `name` with `protocol` among `containers`, if any.
std::optional<int32_t> named_port(const json& containers, const std::string& name,
                                  const std::string& protocol, bool sidecars_only) {
  if (!containers.is_array()) return std::nullopt;
  for (const json& c : containers) {
    if (sidecars_only && cc::string_at(c, {"restartPolicy"}) != "Always") continue;
    const json& ports = at(c, {"ports"});
    if (!ports.is_array()) continue;
    for (const json& p : ports) {
      if (cc::string_at(p, {"name"}) == name && protocol_of(p) == protocol) {
        return static_cast<int32_t>(cc::int_at(p, {"containerPort"}));
      }
    }
  }
  return std::nullopt;
}

bool is_ipv6(const std::string& ip) { return ip.find(':') != std::string::npos; }

std::vector<std::string> pod_ips(const json& pod) {
  std::vector<std::string> out;
  const json& ips = at(pod, {"status", "podIPs"});
  if (ips.is_array()) {
    for (const json& ip : ips) {
      std::string s = cc::string_at(ip, {"ip"});
      if (!s.empty()) out.push_back(s);
    }
  }
  if (out.empty()) {
    std::string s = cc::string_at(pod, {"status", "podIP"});
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

}  // namespace

std::optional<LabelSelector> service_selector(const json& service) {
  const json& sel = at(service, {"spec", "selector"});
  if (!sel.is_object() || sel.empty()) return std::nullopt;
  return LabelSelector::from_set(cc::string_map(&sel));
}

Result<int32_t> find_port(const json& pod, const json& service_port) {
  const json& target = at(service_port, {"targetPort"});
  if (target.is_number_integer()) {
    int64_t n = target.get<int64_t>();
    if (n > 0) return static_cast<int32_t>(n);
  }
  if (target.is_string() && !target.get<std::string>().empty()) {
    const std::string name = target.get<std::string>();
    const std::string protocol = protocol_of(service_port);
    if (auto p = named_port(at(pod, {"spec", "containers"}), name, protocol, false)) return *p;
    if (auto p = named_port(at(pod, {"spec", "initContainers"}), name, protocol, true)) return *p;
    return Status::NotFound("no suitable port for manifest: " + cc::uid_of(pod));
  }
  // targetPort defaults to the Service port.
  return static_cast<int32_t>(cc::int_at(service_port, {"port"}));
}

bool should_pod_be_in_endpoints(const json& pod, bool include_terminating) {
  std::string phase = cc::string_at(pod, {"status", "phase"});
  if (phase == "Failed" || phase == "Succeeded") return false;
  if (pod_ips(pod).empty()) return false;
  if (!include_terminating && cc::being_deleted(pod)) return false;
  return true;
}

std::string service_ip_family(const json& service) {
  const json& families = at(service, {"spec", "ipFamilies"});
  if (families.is_array() && !families.empty() && families[0].is_string()) {
    return families[0].get<std::string>();
  }
  std::string ip = cc::string_at(service, {"spec", "clusterIP"});
  return is_ipv6(ip) ? "IPv6" : "IPv4";
}

std::string pod_ip(const json& pod, const std::string& family) {
  for (const std::string& ip : pod_ips(pod)) {
    if (is_ipv6(ip) == (family == "IPv6")) return ip;
  }
  return "";
}

bool should_set_hostname(const json& pod, const json& service) {
  return !cc::string_at(pod, {"spec", "hostname"}).empty() &&
         cc::string_at(pod, {"spec", "subdomain"}) == cc::name_of(service) &&
         cc::namespace_of(pod) == cc::namespace_of(service);
}

bool service_ip_set(const json& service) {
  std::string ip = cc::string_at(service, {"spec", "clusterIP"});
  return !ip.empty() && ip != "None";
}

json pod_reference(const json& pod) {
  return {{"kind", "Pod"},
          {"namespace", cc::namespace_of(pod)},
          {"name", cc::name_of(pod)},
          {"uid", cc::uid_of(pod)}};
}

std::vector<client::ObjectPtr> selected_pods(const client::Informer& pods, const std::string& ns,
                                             const LabelSelector& selector) {
  std::vector<client::ObjectPtr> out;
  for (const auto& p : pods.list(ns)) {
    if (selector.matches_json(at(*p, {"metadata", "labels"}))) out.push_back(p);
  }
  return out;
}

std::vector<std::string> pod_service_keys(const client::Informer& services, const json& pod) {
  std::vector<std::string> out;
  const json& labels = at(pod, {"metadata", "labels"});
  for (const auto& svc : services.list(cc::namespace_of(pod))) {
    auto selector = service_selector(*svc);
    if (selector && selector->matches_json(labels)) out.push_back(cc::key_of(*svc));
  }
  return out;
}

bool pod_labels_changed(const json& old_pod, const json& new_pod) {
  return at(old_pod, {"metadata", "labels"}) != at(new_pod, {"metadata", "labels"}) ||
         at(old_pod, {"spec", "hostname"}) != at(new_pod, {"spec", "hostname"}) ||
         at(old_pod, {"spec", "subdomain"}) != at(new_pod, {"spec", "subdomain"});
}

bool pod_endpoints_changed(const json& old_pod, const json& new_pod) {
  return at(old_pod, {"metadata", "deletionTimestamp"}) !=
             at(new_pod, {"metadata", "deletionTimestamp"}) ||
         cc::is_pod_ready(old_pod) != cc::is_pod_ready(new_pod) ||
         pod_ips(old_pod) != pod_ips(new_pod) ||
         at(old_pod, {"spec", "nodeName"}) != at(new_pod, {"spec", "nodeName"}) ||
         at(old_pod, {"status", "phase"}) != at(new_pod, {"status", "phase"});
}

bool namespace_terminating(const Status& s) {
  return s.code() == StatusCode::kForbidden &&
         s.message().find("because it is being terminated") != std::string::npos;
}

}  // namespace skiff::controllers::endpoints
