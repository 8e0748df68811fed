// The core ("") group, version v1.
#include <algorithm>
#include <cctype>
#include <set>

#include "api/builtin/builtin.h"
#include "api/builtin/pod.h"
#include "common/base64.h"
#include "common/names.h"
#include "common/strings.h"

namespace skiff::api::builtin {
namespace {

constexpr const char* kCoreTypes = "io.k8s.api.core.v1";
constexpr int64_t kMaxSecretSize = 1024 * 1024;
constexpr const char* kInvalidIP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

std::string core_type(std::string_view kind) {
  return std::string(kCoreTypes) + "." + std::string(kind);
}

// The length of base64-encoded data once decoded (Secret sizes count decoded bytes).
size_t base64_decoded_size(std::string_view s) {
  Result<std::string> decoded = base64_decode(s);
  return decoded.ok() ? decoded->size() : s.size() / 4 * 3;
}

// helper.GetAccessModesAsString.
std::string access_modes(const json* modes) {
  std::vector<std::string> list = string_list(modes);
  auto contains = [&](const char* m) {
    return std::find(list.begin(), list.end(), m) != list.end();
  };
  std::vector<std::string> out;
  if (contains("ReadWriteOnce")) out.push_back("RWO");
  if (contains("ReadOnlyMany")) out.push_back("ROX");
  if (contains("ReadWriteMany")) out.push_back("RWX");
  if (contains("ReadWriteOncePod")) out.push_back("RWOP");
  std::string s;
  for (size_t i = 0; i < out.size(); ++i) s += (i ? "," : "") + out[i];
  return s;
}

// helper.GetPersistentVolumeClass / GetPersistentVolumeClaimClass.
std::string storage_class(const json& obj) {
  if (const json* a =
          at(obj, {"metadata", "annotations", "volume.beta.kubernetes.io/storage-class"})) {
    return as_string(a);
  }
  return str_at(obj, {"spec", "storageClassName"});
}

// ---------------------------------------------------------------------------------------------
// Namespaces

void default_namespace(json& ns) {
  if (!ns.is_object()) return;
  std::string name = str_at(ns, {"metadata", "name"});
  if (!name.empty())
    object_member(object_member(ns, "metadata"), "labels")["kubernetes.io/metadata.name"] = name;
  json& spec = object_member(ns, "spec");
  // The "kubernetes" finalizer is put on new namespaces only (the Namespace strategy's
  // PrepareForCreate); a new object has no resourceVersion yet. On updates an absent list means
  // the finalizers were removed, as Go clients omit an empty one.
  if (str_at(ns, {"metadata", "resourceVersion"}).empty()) {
    set_default(spec, "finalizers", json::array({"kubernetes"}));
  }
  json& status = object_member(ns, "status");
  if (str_at(status, {"phase"}).empty()) status["phase"] = "Active";
}

void validate_namespace(const json& ns, const json*, FieldErrors& errs) {
  std::vector<std::string> finalizers = string_list(at(ns, {"spec", "finalizers"}));
  Path p = Path("spec").child("finalizers");
  for (const std::string& f : finalizers) {
    validate_qualified_name(f, p, errs);
    if (f.find('/') == std::string::npos && f != "kubernetes" && f != "orphan" &&
        f != "foregroundDeletion") {
      errs.invalid(p, go_quote(f),
                   "name is neither a standard finalizer name nor is it fully qualified");
    }
  }
}

std::vector<json> namespace_row(const json& ns, int64_t now) {
  return {str_at(ns, {"metadata", "name"}), str_at(ns, {"status", "phase"}), age_cell(ns, now)};
}

// ---------------------------------------------------------------------------------------------
// ConfigMaps and Secrets

void validate_config_map(const json& cm, const json* old, FieldErrors& errs) {
  if (old != nullptr && bool_at(*old, {"immutable"}).value_or(false)) {
    if (!bool_at(cm, {"immutable"}).value_or(false)) {
      errs.forbidden(Path("immutable"), "field is immutable when `immutable` is set");
    }
    if (!json_equal(member(cm, "data"), member(*old, "data"))) {
      errs.forbidden(Path("data"), "field is immutable when `immutable` is set");
    }
    if (!json_equal(member(cm, "binaryData"), member(*old, "binaryData"))) {
      errs.forbidden(Path("binaryData"), "field is immutable when `immutable` is set");
    }
  }
  int64_t total = 0;
  const json* data = object_at(cm, {"data"});
  const json* binary = object_at(cm, {"binaryData"});
  for (const std::string& key : sorted_keys(data)) {
    for (const std::string& msg : is_config_map_key(key)) {
      errs.invalid(Path("data").key(key), go_quote(key), msg);
    }
    if (binary != nullptr && binary->contains(key)) {
      errs.invalid(Path("data").key(key), go_quote(key), "duplicate of key present in binaryData");
    }
    total += static_cast<int64_t>(as_string(&(*data)[key]).size());
  }
  for (const std::string& key : sorted_keys(binary)) {
    for (const std::string& msg : is_config_map_key(key)) {
      errs.invalid(Path("binaryData").key(key), go_quote(key), msg);
    }
    total += static_cast<int64_t>(base64_decoded_size(as_string(&(*binary)[key])));
  }
  // field.NewPath("") prints as "[]": the error refers to the whole object.
  if (total > kMaxSecretSize) errs.too_long(Path("[]"), kMaxSecretSize);
}

std::vector<json> config_map_row(const json& cm, int64_t now) {
  int64_t n = static_cast<int64_t>(size_of(object_at(cm, {"data"})) +
                                   size_of(object_at(cm, {"binaryData"})));
  return {str_at(cm, {"metadata", "name"}), n, age_cell(cm, now)};
}

void default_secret(json& secret) {
  if (!secret.is_object()) return;
  // stringData is write-only: Kubernetes merges it into data (overriding) when decoding.
  if (const json* sd = object_at(secret, {"stringData"})) {
    json& data = object_member(secret, "data");
    for (auto it = sd->begin(); it != sd->end(); ++it) {
      if (it->is_string()) data[it.key()] = base64_encode(it->get<std::string>());
    }
  }
  secret.erase("stringData");
  if (str_at(secret, {"type"}).empty()) secret["type"] = "Opaque";
}

void validate_secret(const json& secret, const json* old, FieldErrors& errs) {
  if (old != nullptr) {
    const json* t = member(secret, "type");
    const json* old_t = member(*old, "type");
    if (!json_equal(t, old_t))
      errs.invalid(Path("type"), go_quote(as_string(t)), "field is immutable");
    if (bool_at(*old, {"immutable"}).value_or(false)) {
      if (!bool_at(secret, {"immutable"}).value_or(false)) {
        errs.forbidden(Path("immutable"), "field is immutable when `immutable` is set");
      }
      if (!json_equal(member(secret, "data"), member(*old, "data"))) {
        errs.forbidden(Path("data"), "field is immutable when `immutable` is set");
      }
    }
  }
  const Path data_path("data");
  const json* data = object_at(secret, {"data"});
  int64_t total = 0;
  for (const std::string& key : sorted_keys(data)) {
    for (const std::string& msg : is_config_map_key(key)) {
      errs.invalid(data_path.key(key), go_quote(key), msg);
    }
    total += static_cast<int64_t>(base64_decoded_size(as_string(&(*data)[key])));
  }
  if (total > kMaxSecretSize) errs.too_long(data_path, kMaxSecretSize);
  auto has_key = [&](const char* k) { return data != nullptr && data->contains(k); };
  std::string type = str_at(secret, {"type"});
  if (type == "kubernetes.io/service-account-token") {
    if (str_at(secret, {"metadata", "annotations", "kubernetes.io/service-account.name"}).empty()) {
      errs.required(
          Path("metadata").child("annotations").key("kubernetes.io/service-account.name"));
    }
  } else if (type == "kubernetes.io/dockercfg") {
    if (!has_key(".dockercfg")) errs.required(data_path.key(".dockercfg"));
  } else if (type == "kubernetes.io/dockerconfigjson") {
    if (!has_key(".dockerconfigjson")) errs.required(data_path.key(".dockerconfigjson"));
  } else if (type == "kubernetes.io/basic-auth") {
    if (!has_key("username") && !has_key("password")) {
      errs.required(data_path.key("username"));
      errs.required(data_path.key("password"));
    }
  } else if (type == "kubernetes.io/ssh-auth") {
    if (as_string(data != nullptr ? member(*data, "ssh-privatekey") : nullptr).empty()) {
      errs.required(data_path.key("ssh-privatekey"));
    }
  } else if (type == "kubernetes.io/tls") {
    if (!has_key("tls.crt")) errs.required(data_path.key("tls.crt"));
    if (!has_key("tls.key")) errs.required(data_path.key("tls.key"));
  }
}

std::vector<json> secret_row(const json& s, int64_t now) {
  return {str_at(s, {"metadata", "name"}), str_at(s, {"type"}),
          static_cast<int64_t>(size_of(object_at(s, {"data"}))), age_cell(s, now)};
}

// ---------------------------------------------------------------------------------------------
// Services

bool is_headless(const json& svc) { return str_at(svc, {"spec", "clusterIP"}) == "None"; }

void default_service(json& svc) {
  if (!svc.is_object()) return;
  json& spec = object_member(svc, "spec");
  if (str_at(spec, {"sessionAffinity"}).empty()) spec["sessionAffinity"] = "None";
  std::string affinity = str_at(spec, {"sessionAffinity"});
  if (affinity == "None") spec.erase("sessionAffinityConfig");
  if (affinity == "ClientIP" &&
      !int_at(spec, {"sessionAffinityConfig", "clientIP", "timeoutSeconds"})) {
    spec["sessionAffinityConfig"] = {{"clientIP", {{"timeoutSeconds", 10800}}}};
  }
  if (str_at(spec, {"type"}).empty()) spec["type"] = "ClusterIP";
  std::string type = str_at(spec, {"type"});
  if (json* ports = mutable_at(spec, {"ports"}); ports != nullptr && ports->is_array()) {
    for (json& port : *ports) {
      if (!port.is_object()) continue;
      if (str_at(port, {"protocol"}).empty()) port["protocol"] = "TCP";
      const json* tp = member(port, "targetPort");
      bool unset = tp == nullptr || (tp->is_string() && tp->get<std::string>().empty()) ||
                   (as_int(tp) == 0 && !tp->is_string());
      if (unset && has(port, "port")) port["targetPort"] = port["port"];
    }
  }
  bool externally_accessible = type == "LoadBalancer" || type == "NodePort" ||
                               (type == "ClusterIP" && size_of(member(spec, "externalIPs")) > 0);
  if (externally_accessible && str_at(spec, {"externalTrafficPolicy"}).empty()) {
    spec["externalTrafficPolicy"] = "Cluster";
  }
  if (!has(spec, "internalTrafficPolicy") &&
      (type == "NodePort" || type == "LoadBalancer" || type == "ClusterIP")) {
    spec["internalTrafficPolicy"] = "Cluster";
  }
  if (type == "LoadBalancer") set_default(spec, "allocateLoadBalancerNodePorts", true);

  // What the Service REST layer settles before allocation: clusterIPs mirrors clusterIP, and
  // the IP family fields describe a single-stack IPv4 cluster (a headless Service without a
  // selector may use every family the cluster has, hence RequireDualStack with just IPv4).
  if (type != "ExternalName") {
    std::string cluster_ip = str_at(spec, {"clusterIP"});
    if (!cluster_ip.empty() && size_of(member(spec, "clusterIPs")) == 0) {
      spec["clusterIPs"] = json::array({cluster_ip});
    }
    bool selectorless_headless = cluster_ip == "None" && size_of(member(spec, "selector")) == 0;
    if (!has(spec, "ipFamilyPolicy")) {
      spec["ipFamilyPolicy"] = selectorless_headless ? "RequireDualStack" : "SingleStack";
    }
    if (size_of(member(spec, "ipFamilies")) == 0) {
      json families = json::array();
      for (const std::string& ip : string_list(member(spec, "clusterIPs"))) {
        if (ip == "None" || !is_ip(ip)) continue;
        families.push_back(ip.find(':') != std::string::npos ? "IPv6" : "IPv4");
      }
      if (families.empty()) families.push_back("IPv4");
      spec["ipFamilies"] = families;
    }
  }
  json& status = object_member(svc, "status");
  json& lb = object_member(status, "loadBalancer");
  if (type == "LoadBalancer" && lb.contains("ingress") && lb["ingress"].is_array()) {
    for (json& ing : lb["ingress"]) {
      if (ing.is_object() && !str_at(ing, {"ip"}).empty()) set_default(ing, "ipMode", "VIP");
    }
  }
}

std::string go_service_port_key(const std::string& protocol, int64_t port) {
  return "core.ServicePort{Name:\"\", Protocol:" + go_quote(protocol) +
         ", AppProtocol:(*string)(nil), Port:" + go_int(port) +
         ", TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}";
}

// The cluster IPs a Service ends up with: clusterIPs, else [clusterIP].
std::vector<std::string> effective_cluster_ips(const json& svc) {
  std::vector<std::string> ips = string_list(at(svc, {"spec", "clusterIPs"}));
  std::string ip = str_at(svc, {"spec", "clusterIP"});
  if (ips.empty() && !ip.empty()) ips.push_back(ip);
  return ips;
}

void validate_service(const json& svc, const json* old, FieldErrors& errs) {
  const Path spec_path("spec");
  static const json kEmpty = json::object();
  const json* spec_ptr = object_at(svc, {"spec"});
  const json& spec = spec_ptr != nullptr ? *spec_ptr : kEmpty;
  std::string type = str_at(spec, {"type"});
  const json* ports = array_at(spec, {"ports"});

  if (old != nullptr && type != "ExternalName" &&
      str_at(*old, {"spec", "type"}) != "ExternalName" &&
      !(is_headless(svc) && is_headless(*old))) {
    std::vector<std::string> now = effective_cluster_ips(svc);
    std::vector<std::string> before = effective_cluster_ips(*old);
    // Empty means "keep what was allocated": the REST layer carries it over.
    if (!now.empty()) {
      json now_json = now;
      for (size_t i = 0; i < before.size() && i < now.size(); ++i) {
        if (before[i] != now[i]) {
          errs.invalid(spec_path.child("clusterIPs").index(i), go_string_slice(&now_json),
                       "may not change once set");
        }
      }
    }
  }

  if (size_of(ports) == 0 && !is_headless(svc) && type != "ExternalName") {
    errs.required(spec_path.child("ports"));
  }
  if (type == "ExternalName") {
    if (!str_at(spec, {"clusterIP"}).empty()) {
      errs.forbidden(spec_path.child("clusterIP"), "may not be set for ExternalName services");
    }
    std::string external = str_at(spec, {"externalName"});
    std::string clean = external;
    if (!clean.empty() && clean.back() == '.') clean.pop_back();
    if (external.empty()) {
      errs.required(spec_path.child("externalName"));
    } else {
      for (const std::string& msg : is_dns1123_subdomain(clean)) {
        errs.invalid(spec_path.child("externalName"), go_quote(external), msg);
      }
    }
  }
  std::set<std::string> port_names;
  bool require_name = size_of(ports) > 1;
  for (size_t i = 0; ports != nullptr && i < ports->size(); ++i) {
    const json& port = (*ports)[i];
    Path pp = spec_path.child("ports").index(i);
    std::string name = str_at(port, {"name"});
    if (require_name && name.empty()) {
      errs.required(pp.child("name"));
    } else if (!name.empty()) {
      validate_dns1123_label(name, pp.child("name"), errs);
      if (port_names.count(name)) {
        errs.duplicate(pp.child("name"), go_quote(name));
      } else {
        port_names.insert(name);
      }
    }
    int64_t number = int_at(port, {"port"}).value_or(0);
    for (const std::string& msg : is_valid_port_num(number)) {
      errs.invalid(pp.child("port"), go_int(number), msg);
    }
    std::string protocol = str_at(port, {"protocol"});
    if (protocol.empty()) {
      errs.required(pp.child("protocol"));
    } else if (protocol != "TCP" && protocol != "UDP" && protocol != "SCTP") {
      errs.not_supported(pp.child("protocol"), go_quote(protocol), {"SCTP", "TCP", "UDP"});
    }
    validate_port_num_or_name(member(port, "targetPort"), pp.child("targetPort"), errs);
    if (const json* app = member(port, "appProtocol")) {
      validate_qualified_name(as_string(app), pp.child("appProtocol"), errs);
    }
  }
  validate_labels(member(spec, "selector"), spec_path.child("selector"), errs);
  std::string affinity = str_at(spec, {"sessionAffinity"});
  if (affinity.empty()) {
    errs.required(spec_path.child("sessionAffinity"));
  } else if (affinity != "ClientIP" && affinity != "None") {
    errs.not_supported(spec_path.child("sessionAffinity"), go_quote(affinity),
                       {"ClientIP", "None"});
  }
  if (affinity == "ClientIP") {
    int64_t timeout =
        int_at(spec, {"sessionAffinityConfig", "clientIP", "timeoutSeconds"}).value_or(0);
    if (timeout <= 0 || timeout > 86400) {
      errs.invalid(
          spec_path.child("sessionAffinityConfig").child("clientIP").child("timeoutSeconds"),
          go_int(timeout), "must be greater than 0 and less than 86400");
    }
  } else if (has(spec, "sessionAffinityConfig")) {
    errs.forbidden(spec_path.child("sessionAffinityConfig"),
                   "must not be set when session affinity is None");
  }
  if (type != "ExternalName") {
    std::string cluster_ip = str_at(spec, {"clusterIP"});
    std::vector<std::string> ips = string_list(member(spec, "clusterIPs"));
    if (!cluster_ip.empty() && !ips.empty() && ips[0] != cluster_ip) {
      errs.invalid(spec_path.child("clusterIPs"), go_string_slice(member(spec, "clusterIPs")),
                   "first value must match `clusterIP`");
    }
    for (size_t i = 0; i < ips.size(); ++i) {
      if (i == 0 && ips[i] == "None") continue;
      if (!is_ip(ips[i])) {
        errs.invalid(spec_path.child("clusterIPs").index(i), go_quote(ips[i]), kInvalidIP);
      }
    }
    if (has(spec, "ipFamilyPolicy")) {
      std::string policy = str_at(spec, {"ipFamilyPolicy"});
      if (policy != "SingleStack" && policy != "PreferDualStack" && policy != "RequireDualStack") {
        errs.not_supported(spec_path.child("ipFamilyPolicy"), go_quote(policy),
                           {"PreferDualStack", "RequireDualStack", "SingleStack"});
      }
    }
    std::vector<std::string> families = string_list(member(spec, "ipFamilies"));
    std::set<std::string> seen;
    for (size_t i = 0; i < families.size(); ++i) {
      if (families[i] != "IPv4" && families[i] != "IPv6") {
        errs.not_supported(spec_path.child("ipFamilies").index(i), go_quote(families[i]),
                           {"IPv4", "IPv6"});
      } else if (!seen.insert(families[i]).second) {
        errs.duplicate(spec_path.child("ipFamilies").index(i), go_quote(families[i]));
      }
    }
  }
  std::vector<std::string> external_ips = string_list(member(spec, "externalIPs"));
  for (size_t i = 0; i < external_ips.size(); ++i) {
    if (!is_ip(external_ips[i])) {
      errs.invalid(spec_path.child("externalIPs").index(i), go_quote(external_ips[i]), kInvalidIP);
    }
  }
  if (type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" &&
      type != "ExternalName") {
    errs.not_supported(spec_path.child("type"), go_quote(type),
                       {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"});
  }
  std::set<std::pair<std::string, int64_t>> keys;
  std::set<int64_t> node_ports;
  for (size_t i = 0; ports != nullptr && i < ports->size(); ++i) {
    const json& port = (*ports)[i];
    Path pp = spec_path.child("ports").index(i);
    int64_t node_port = int_at(port, {"nodePort"}).value_or(0);
    if (type == "ClusterIP" && node_port != 0) {
      errs.forbidden(pp.child("nodePort"), "may not be used when `type` is 'ClusterIP'");
    }
    if (node_port != 0) {
      for (const std::string& msg : is_valid_port_num(node_port)) {
        errs.invalid(pp.child("nodePort"), go_int(node_port), msg);
      }
    }
    std::string protocol = str_at(port, {"protocol"});
    int64_t number = int_at(port, {"port"}).value_or(0);
    if (!keys.insert({protocol, number}).second) {
      errs.duplicate(pp, go_service_port_key(protocol, number));
    }
    if (node_port != 0 && !node_ports.insert(node_port).second) {
      errs.duplicate(pp.child("nodePort"), go_int(node_port));
    }
  }
  for (const char* f : {"externalTrafficPolicy", "internalTrafficPolicy"}) {
    if (!has(spec, f)) continue;
    std::string v = str_at(spec, {f});
    if (v != "Cluster" && v != "Local") {
      errs.not_supported(spec_path.child(f), go_quote(v), {"Cluster", "Local"});
    }
  }
}

// loadBalancerStatusStringer with wide output: sorted unique IPs or hostnames.
std::string load_balancer_ingress(const json* ingress) {
  std::set<std::string> result;
  if (ingress != nullptr && ingress->is_array()) {
    for (const json& i : *ingress) {
      std::string ip = str_at(i, {"ip"});
      std::string host = str_at(i, {"hostname"});
      if (!ip.empty()) {
        result.insert(ip);
      } else if (!host.empty()) {
        result.insert(host);
      }
    }
  }
  std::string out;
  for (const std::string& s : result) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string service_external_ip(const json& svc) {
  std::string type = str_at(svc, {"spec", "type"});
  std::vector<std::string> external = string_list(at(svc, {"spec", "externalIPs"}));
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
    return s;
  };
  if (type == "ClusterIP" || type == "NodePort")
    return external.empty() ? "<none>" : join(external);
  if (type == "LoadBalancer") {
    std::string lb = load_balancer_ingress(at(svc, {"status", "loadBalancer", "ingress"}));
    if (!external.empty()) return lb.empty() ? join(external) : lb + "," + join(external);
    return lb.empty() ? "<pending>" : lb;
  }
  if (type == "ExternalName") return str_at(svc, {"spec", "externalName"});
  return "<unknown>";
}

std::vector<json> service_row(const json& svc, int64_t now) {
  std::string cluster_ip = "<none>";
  std::vector<std::string> ips = string_list(at(svc, {"spec", "clusterIPs"}));
  if (!ips.empty()) cluster_ip = ips[0];
  std::string ports;
  if (const json* ps = array_at(svc, {"spec", "ports"})) {
    for (const json& p : *ps) {
      if (!ports.empty()) ports += ",";
      std::string port = std::to_string(int_at(p, {"port"}).value_or(0));
      int64_t node_port = int_at(p, {"nodePort"}).value_or(0);
      if (node_port > 0) port += ":" + std::to_string(node_port);
      ports += port + "/" + str_at(p, {"protocol"});
    }
  }
  if (ports.empty()) ports = "<none>";
  return {str_at(svc, {"metadata", "name"}),
          str_at(svc, {"spec", "type"}),
          cluster_ip,
          service_external_ip(svc),
          ports,
          age_cell(svc, now),
          format_labels(at(svc, {"spec", "selector"}))};
}

// ---------------------------------------------------------------------------------------------
// Endpoints

void default_endpoints(json& ep) {
  if (!ep.is_object() || !ep.contains("subsets") || !ep["subsets"].is_array()) return;
  for (json& ss : ep["subsets"]) {
    if (!ss.is_object() || !ss.contains("ports") || !ss["ports"].is_array()) continue;
    for (json& port : ss["ports"]) {
      if (port.is_object() && str_at(port, {"protocol"}).empty()) port["protocol"] = "TCP";
    }
  }
}

void validate_endpoints(const json& ep, const json*, FieldErrors& errs) {
  const json* subsets = array_at(ep, {"subsets"});
  for (size_t i = 0; subsets != nullptr && i < subsets->size(); ++i) {
    const json& ss = (*subsets)[i];
    Path sp = Path("subsets").index(i);
    for (const char* list : {"addresses", "notReadyAddresses"}) {
      const json* addrs = array_at(ss, {list});
      for (size_t a = 0; addrs != nullptr && a < addrs->size(); ++a) {
        std::string ip = str_at((*addrs)[a], {"ip"});
        if (!is_ip(ip)) errs.invalid(sp.child(list).index(a).child("ip"), go_quote(ip), kInvalidIP);
      }
    }
    const json* ports = array_at(ss, {"ports"});
    for (size_t k = 0; ports != nullptr && k < ports->size(); ++k) {
      const json& port = (*ports)[k];
      Path pp = sp.child("ports").index(k);
      std::string name = str_at(port, {"name"});
      if (ports->size() > 1 && name.empty()) errs.required(pp.child("name"));
      if (!name.empty()) validate_dns1123_label(name, pp.child("name"), errs);
      int64_t number = int_at(port, {"port"}).value_or(0);
      for (const std::string& msg : is_valid_port_num(number)) {
        errs.invalid(pp.child("port"), go_int(number), msg);
      }
      std::string protocol = str_at(port, {"protocol"});
      if (protocol.empty()) {
        errs.required(pp.child("protocol"));
      } else if (protocol != "TCP" && protocol != "UDP" && protocol != "SCTP") {
        errs.not_supported(pp.child("protocol"), go_quote(protocol), {"SCTP", "TCP", "UDP"});
      }
    }
  }
}

// formatEndpoints with all ports.
std::string format_endpoints(const json& ep) {
  const json* subsets = array_at(ep, {"subsets"});
  if (subsets == nullptr || subsets->empty()) return "<none>";
  std::vector<std::string> list;
  const size_t max = 3;
  bool more = false;
  size_t count = 0;
  auto host_port = [](const std::string& ip, int64_t port) {
    std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
    return host + ":" + std::to_string(port);
  };
  for (const json& ss : *subsets) {
    const json* addrs = array_at(ss, {"addresses"});
    const json* ports = array_at(ss, {"ports"});
    size_t naddrs = size_of(addrs);
    if (size_of(ports) == 0) {
      count += naddrs;
      for (size_t a = 0; a < naddrs; ++a) {
        if (list.size() == max) {
          more = true;
          break;
        }
        list.push_back(str_at((*addrs)[a], {"ip"}));
      }
      continue;
    }
    for (const json& port : *ports) {
      count += naddrs;
      for (size_t a = 0; a < naddrs; ++a) {
        if (list.size() == max) {
          more = true;
          break;
        }
        list.push_back(host_port(str_at((*addrs)[a], {"ip"}), int_at(port, {"port"}).value_or(0)));
      }
    }
  }
  std::string ret;
  for (size_t i = 0; i < list.size(); ++i) ret += (i ? "," : "") + list[i];
  if (more) return ret + " + " + std::to_string(count - max) + " more...";
  return ret;
}

std::vector<json> endpoints_row(const json& ep, int64_t now) {
  return {str_at(ep, {"metadata", "name"}), format_endpoints(ep), age_cell(ep, now)};
}

// ---------------------------------------------------------------------------------------------
// Events

void validate_event(const json& ev, const json*, FieldErrors& errs) {
  std::string ns = str_at(ev, {"metadata", "namespace"});
  std::string involved_ns = str_at(ev, {"involvedObject", "namespace"});
  if (!has(ev, "eventTime")) {
    bool ok = involved_ns.empty() ? (ns.empty() || ns == "default") : ns == involved_ns;
    if (!ok) {
      errs.invalid(Path("involvedObject").child("namespace"), go_quote(involved_ns),
                   "does not match event.namespace");
    }
  }
}

std::string event_source(const json& ev) {
  std::string component = str_at(ev, {"source", "component"});
  if (component.empty()) component = str_at(ev, {"reportingComponent"});
  std::string host = str_at(ev, {"source", "host"});
  if (host.empty()) host = str_at(ev, {"reportingInstance"});
  return host.empty() ? component : component + ", " + host;
}

std::vector<json> event_row(const json& ev, int64_t now) {
  std::string first = since(member(ev, "firstTimestamp"), now);
  if (member(ev, "firstTimestamp") == nullptr) first = since(member(ev, "eventTime"), now);
  std::string last = since(member(ev, "lastTimestamp"), now);
  if (member(ev, "lastTimestamp") == nullptr) last = first;
  int64_t count = int_at(ev, {"count"}).value_or(0);
  if (const json* series = object_at(ev, {"series"})) {
    last = since(member(*series, "lastObservedTime"), now);
    count = int_at(*series, {"count"}).value_or(0);
  } else if (count == 0) {
    count = 1;
  }
  std::string kind = ascii_lower(str_at(ev, {"involvedObject", "kind"}));
  std::string name = str_at(ev, {"involvedObject", "name"});
  std::string target = name.empty() ? kind : kind + "/" + name;
  return {last,
          str_at(ev, {"type"}),
          str_at(ev, {"reason"}),
          target,
          str_at(ev, {"involvedObject", "fieldPath"}),
          event_source(ev),
          std::string(trim_space(str_at(ev, {"message"}))),
          first,
          count,
          str_at(ev, {"metadata", "name"})};
}

// ---------------------------------------------------------------------------------------------
// Nodes

void default_node(json& node) {
  if (!node.is_object()) return;
  const json* capacity = object_at(node, {"status", "capacity"});
  if (capacity != nullptr && object_at(node, {"status", "allocatable"}) == nullptr) {
    json copy = *capacity;
    object_member(node, "status")["allocatable"] = std::move(copy);
  }
  ensure_status(node);
}

void validate_node(const json& node, const json*, FieldErrors& errs) {
  const Path spec("spec");
  const json* taints = array_at(node, {"spec", "taints"});
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t i = 0; taints != nullptr && i < taints->size(); ++i) {
    const json& t = (*taints)[i];
    Path tp = spec.child("taints").index(i);
    std::string key = str_at(t, {"key"});
    validate_qualified_name(key, tp.child("key"), errs);
    std::string value = str_at(t, {"value"});
    if (!value.empty()) {
      for (const std::string& msg : is_valid_label_value(value)) {
        errs.invalid(tp.child("value"), go_quote(value), msg);
      }
    }
    std::string effect = str_at(t, {"effect"});
    if (effect.empty()) {
      errs.required(tp.child("effect"));
    } else if (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
      errs.not_supported(tp.child("effect"), go_quote(effect),
                         {"NoSchedule", "PreferNoSchedule", "NoExecute"});
    }
    if (!seen.insert({key, effect}).second) {
      errs.duplicate(tp, t.dump());
    }
  }
}

std::vector<std::string> node_roles(const json& node) {
  std::set<std::string> roles;
  const json* labels = object_at(node, {"metadata", "labels"});
  const std::string prefix = "node-role.kubernetes.io/";
  for (const std::string& k : sorted_keys(labels)) {
    std::string v = as_string(&(*labels)[k]);
    if (k.rfind(prefix, 0) == 0) {
      if (k.size() > prefix.size()) roles.insert(k.substr(prefix.size()));
    } else if (k == "kubernetes.io/role" && !v.empty()) {
      roles.insert(v);
    }
  }
  return {roles.begin(), roles.end()};
}

std::string node_address(const json& node, std::string_view type) {
  if (const json* addrs = array_at(node, {"status", "addresses"})) {
    for (const json& a : *addrs) {
      if (str_at(a, {"type"}) == type) return str_at(a, {"address"});
    }
  }
  return "<none>";
}

std::vector<json> node_row(const json& node, int64_t now) {
  std::vector<std::string> status;
  if (const json* conds = array_at(node, {"status", "conditions"})) {
    const json* ready = nullptr;
    for (const json& c : *conds) {
      if (str_at(c, {"type"}) == "Ready") ready = &c;
    }
    if (ready != nullptr)
      status.push_back(str_at(*ready, {"status"}) == "True" ? "Ready" : "NotReady");
  }
  if (status.empty()) status.push_back("Unknown");
  if (bool_at(node, {"spec", "unschedulable"}).value_or(false))
    status.push_back("SchedulingDisabled");
  std::string status_cell;
  for (size_t i = 0; i < status.size(); ++i) status_cell += (i ? "," : "") + status[i];
  std::string roles;
  for (const std::string& r : node_roles(node)) roles += (roles.empty() ? "" : ",") + r;
  if (roles.empty()) roles = "<none>";
  auto info = [&](const char* f) {
    std::string v = str_at(node, {"status", "nodeInfo", f});
    return v.empty() ? std::string("<unknown>") : v;
  };
  return {str_at(node, {"metadata", "name"}),
          status_cell,
          roles,
          age_cell(node, now),
          str_at(node, {"status", "nodeInfo", "kubeletVersion"}),
          node_address(node, "InternalIP"),
          node_address(node, "ExternalIP"),
          info("osImage"),
          info("kernelVersion"),
          info("containerRuntimeVersion")};
}

// ---------------------------------------------------------------------------------------------
// PersistentVolumes and PersistentVolumeClaims

void default_persistent_volume(json& pv) {
  if (!pv.is_object()) return;
  json& spec = object_member(pv, "spec");
  if (str_at(spec, {"persistentVolumeReclaimPolicy"}).empty()) {
    spec["persistentVolumeReclaimPolicy"] = "Retain";
  }
  set_default(spec, "volumeMode", "Filesystem");
  json& status = object_member(pv, "status");
  if (str_at(status, {"phase"}).empty()) status["phase"] = "Pending";
}

void validate_access_modes(const json* modes, const Path& p, FieldErrors& errs) {
  std::vector<std::string> list = string_list(modes);
  if (list.empty()) {
    errs.required(p, "at least 1 access mode is required");
    return;
  }
  for (const std::string& m : list) {
    if (m != "ReadWriteOnce" && m != "ReadOnlyMany" && m != "ReadWriteMany" &&
        m != "ReadWriteOncePod") {
      errs.not_supported(p, go_quote(m),
                         {"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"});
    }
  }
}

void validate_persistent_volume(const json& pv, const json*, FieldErrors& errs) {
  const Path spec("spec");
  const json* capacity = object_at(pv, {"spec", "capacity"});
  if (size_of(capacity) == 0) {
    errs.required(spec.child("capacity"));
  } else if (!capacity->contains("storage") || capacity->size() > 1) {
    errs.not_supported(spec.child("capacity"), go_value(capacity), {"storage"});
  }
  validate_access_modes(at(pv, {"spec", "accessModes"}), spec.child("accessModes"), errs);
  std::string policy = str_at(pv, {"spec", "persistentVolumeReclaimPolicy"});
  if (!policy.empty() && policy != "Delete" && policy != "Recycle" && policy != "Retain") {
    errs.not_supported(spec.child("persistentVolumeReclaimPolicy"), go_quote(policy),
                       {"Delete", "Recycle", "Retain"});
  }
  static const std::set<std::string> kNotSources = {"capacity",
                                                    "accessModes",
                                                    "claimRef",
                                                    "persistentVolumeReclaimPolicy",
                                                    "storageClassName",
                                                    "mountOptions",
                                                    "volumeMode",
                                                    "nodeAffinity",
                                                    "volumeAttributesClassName"};
  std::vector<std::string> sources;
  if (const json* s = object_at(pv, {"spec"})) {
    for (auto it = s->begin(); it != s->end(); ++it) {
      if (!it->is_null() && !kNotSources.count(it.key())) sources.push_back(it.key());
    }
  }
  if (sources.empty()) {
    errs.required(spec, "must specify a volume type");
  } else {
    for (size_t i = 1; i < sources.size(); ++i) {
      errs.forbidden(spec.child(sources[i]), "may not specify more than 1 volume type");
    }
  }
  std::string mode = str_at(pv, {"spec", "volumeMode"});
  if (!mode.empty() && mode != "Block" && mode != "Filesystem") {
    errs.not_supported(spec.child("volumeMode"), go_quote(mode), {"Block", "Filesystem"});
  }
}

std::vector<json> persistent_volume_row(const json& pv, int64_t now) {
  std::string claim;
  if (const json* ref = object_at(pv, {"spec", "claimRef"})) {
    claim = str_at(*ref, {"namespace"}) + "/" + str_at(*ref, {"name"});
  }
  std::string phase = str_at(pv, {"status", "phase"});
  if (at(pv, {"metadata", "deletionTimestamp"}) != nullptr) phase = "Terminating";
  return {str_at(pv, {"metadata", "name"}),
          quantity_text(at(pv, {"spec", "capacity", "storage"})),
          access_modes(at(pv, {"spec", "accessModes"})),
          str_at(pv, {"spec", "persistentVolumeReclaimPolicy"}),
          phase,
          claim,
          storage_class(pv),
          str_at(pv, {"spec", "volumeAttributesClassName"}, "<unset>"),
          str_at(pv, {"status", "reason"}),
          age_cell(pv, now),
          str_at(pv, {"spec", "volumeMode"}, "<unset>")};
}

void default_persistent_volume_claim(json& pvc) {
  if (!pvc.is_object()) return;
  set_default(object_member(pvc, "spec"), "volumeMode", "Filesystem");
  json& status = object_member(pvc, "status");
  if (str_at(status, {"phase"}).empty()) status["phase"] = "Pending";
}

void validate_pvc_spec(const json& pvc, FieldErrors& errs) {
  const Path spec("spec");
  validate_access_modes(at(pvc, {"spec", "accessModes"}), spec.child("accessModes"), errs);
  validate_label_selector(at(pvc, {"spec", "selector"}), spec.child("selector"), errs);
  const json* storage = at(pvc, {"spec", "resources", "requests", "storage"});
  if (storage == nullptr) {
    errs.required(spec.child("resources").key("storage"));
  } else if (auto q = quantity_of(storage); q && q->sign() <= 0) {
    errs.invalid(spec.child("resources").key("storage"), go_value(storage),
                 "must be greater than zero");
  }
  std::string mode = str_at(pvc, {"spec", "volumeMode"});
  if (at(pvc, {"spec", "volumeMode"}) != nullptr && mode != "Block" && mode != "Filesystem") {
    errs.not_supported(spec.child("volumeMode"), go_quote(mode), {"Block", "Filesystem"});
  }
  std::string sc = str_at(pvc, {"spec", "storageClassName"});
  if (!sc.empty()) {
    for (const std::string& msg : is_dns1123_subdomain(sc)) {
      errs.invalid(spec.child("storageClassName"), go_quote(sc), msg);
    }
  }
}

void validate_persistent_volume_claim(const json& pvc, const json* old, FieldErrors& errs) {
  if (object_at(pvc, {"spec"}) == nullptr) {
    errs.required(Path("spec").child("accessModes"), "at least 1 access mode is required");
    errs.required(Path("spec").child("resources").key("storage"));
    return;
  }
  validate_pvc_spec(pvc, errs);
  if (old == nullptr) return;
  json now = *object_at(pvc, {"spec"});
  static const json kEmpty = json::object();
  json before = object_at(*old, {"spec"}) != nullptr ? *object_at(*old, {"spec"}) : kEmpty;
  // volumeName may be set once; requests (storage) may change; the rest is immutable.
  if (str_at(before, {"volumeName"}).empty()) {
    if (now.contains("volumeName")) {
      before["volumeName"] = now["volumeName"];
    } else {
      before.erase("volumeName");
    }
  }
  auto old_size = quantity_of(at(before, {"resources", "requests", "storage"}));
  auto new_size = quantity_of(at(now, {"resources", "requests", "storage"}));
  for (json* s : {&now, &before}) {
    if (s->contains("resources") && (*s)["resources"].is_object())
      (*s)["resources"].erase("requests");
    if (s->contains("resources") && (*s)["resources"].empty()) s->erase("resources");
    s->erase("volumeAttributesClassName");
  }
  if (now != before) {
    std::string diff;
    for (auto it = before.begin(); it != before.end(); ++it) {
      if (!now.contains(it.key()) || now[it.key()] != *it) {
        diff += "  - " + it.key() + ": " + it->dump() + "\n";
        diff += "  + " + it.key() + ": " +
                (now.contains(it.key()) ? now[it.key()].dump() : "<unset>") + "\n";
      }
    }
    for (auto it = now.begin(); it != now.end(); ++it) {
      if (!before.contains(it.key())) {
        diff += "  - " + it.key() + ": <unset>\n  + " + it.key() + ": " + it->dump() + "\n";
      }
    }
    errs.forbidden(Path("spec"),
                   "spec is immutable after creation except resources.requests and "
                   "volumeAttributesClassName for bound claims\n" +
                       diff);
  }
  if (old_size && new_size && *new_size < *old_size) {
    errs.forbidden(Path("spec").child("resources").child("requests").child("storage"),
                   "field can not be less than previous value");
  }
}

std::vector<json> persistent_volume_claim_row(const json& pvc, int64_t now) {
  std::string phase = str_at(pvc, {"status", "phase"});
  if (at(pvc, {"metadata", "deletionTimestamp"}) != nullptr) phase = "Terminating";
  std::string volume = str_at(pvc, {"spec", "volumeName"});
  std::string capacity, modes;
  if (!volume.empty()) {
    modes = access_modes(at(pvc, {"status", "accessModes"}));
    capacity = quantity_text(at(pvc, {"status", "capacity", "storage"}));
  }
  return {str_at(pvc, {"metadata", "name"}),
          phase,
          volume,
          capacity,
          modes,
          storage_class(pvc),
          str_at(pvc, {"spec", "volumeAttributesClassName"}, "<unset>"),
          age_cell(pvc, now),
          str_at(pvc, {"spec", "volumeMode"}, "<unset>")};
}

// ---------------------------------------------------------------------------------------------
// LimitRanges, ResourceQuotas, ServiceAccounts, Bindings

void default_limit_range(json& lr) {
  json* limits = mutable_at(lr, {"spec", "limits"});
  if (limits == nullptr || !limits->is_array()) return;
  for (json& item : *limits) {
    if (str_at(item, {"type"}) != "Container") continue;
    json& def = object_member(item, "default");
    json& def_req = object_member(item, "defaultRequest");
    if (const json* max = object_at(item, {"max"})) {
      for (auto it = max->begin(); it != max->end(); ++it) {
        if (!def.contains(it.key())) def[it.key()] = *it;
      }
    }
    for (auto it = def.begin(); it != def.end(); ++it) {
      if (!def_req.contains(it.key())) def_req[it.key()] = *it;
    }
    if (const json* min = object_at(item, {"min"})) {
      for (auto it = min->begin(); it != min->end(); ++it) {
        if (!def_req.contains(it.key())) def_req[it.key()] = *it;
      }
    }
  }
}

void validate_limit_range(const json& lr, const json*, FieldErrors& errs) {
  const json* limits = array_at(lr, {"spec", "limits"});
  for (size_t i = 0; limits != nullptr && i < limits->size(); ++i) {
    Path lp = Path("spec").child("limits").index(i);
    std::string type = str_at((*limits)[i], {"type"});
    if (type.empty()) {
      errs.required(lp.child("type"));
    } else if (type != "Pod" && type != "Container" && type != "PersistentVolumeClaim") {
      errs.not_supported(lp.child("type"), go_quote(type),
                         {"Container", "PersistentVolumeClaim", "Pod"});
    }
  }
}

void validate_resource_quota(const json& rq, const json*, FieldErrors& errs) {
  const json* hard = object_at(rq, {"spec", "hard"});
  for (const std::string& k : sorted_keys(hard)) {
    auto q = quantity_of(&(*hard)[k]);
    if (q && q->sign() < 0) {
      errs.invalid(Path("spec").child("hard").key(k), go_value(&(*hard)[k]),
                   "must be greater than or equal to 0");
    }
  }
}

std::vector<json> resource_quota_row(const json& rq, int64_t now) {
  const json* hard = object_at(rq, {"status", "hard"});
  const json* used = object_at(rq, {"status", "used"});
  std::string requests, limits;
  auto text = [](const json* v) { return quantity_text(v); };
  for (const std::string& r : sorted_keys(hard)) {
    std::string entry = r + ": " + text(used != nullptr ? member(*used, r) : nullptr) + "/" +
                        text(member(*hard, r)) + ", ";
    auto dot = r.find('.');
    if (dot != std::string::npos && r.substr(0, dot) == "limits") {
      limits += entry;
    } else {
      requests += entry;
    }
  }
  auto trim = [](std::string s) {
    if (s.size() >= 2 && s.compare(s.size() - 2, 2, ", ") == 0) s.resize(s.size() - 2);
    return s;
  };
  return {str_at(rq, {"metadata", "name"}), trim(requests), trim(limits), age_cell(rq, now)};
}

std::vector<json> service_account_row(const json& sa, int64_t now) {
  return {str_at(sa, {"metadata", "name"}),
          static_cast<int64_t>(size_of(array_at(sa, {"secrets"}))), age_cell(sa, now)};
}

void validate_binding(const json& b, const json*, FieldErrors& errs) {
  std::string kind = str_at(b, {"target", "kind"});
  if (!kind.empty() && kind != "Node") {
    errs.not_supported(Path("target").child("kind"), go_quote(kind), {"Node", "<empty>"});
  }
  if (str_at(b, {"target", "name"}).empty()) errs.required(Path("target").child("name"));
}

}  // namespace

void add_core_resources(Registry& registry, const Docs& docs) {
  const std::string t = kCoreTypes;
  using S = Scope;

  auto bindings = new_resource(docs, t, "", "Binding", "bindings", S::kNamespaced);
  bindings->verbs = create_only();
  bindings->stored = false;
  bindings->validate =
      make_validator("Binding", "", true, NameRule::kDNS1123Subdomain, validate_binding);
  registry.add(bindings);

  auto cm = new_resource(docs, t, "", "ConfigMap", "configmaps", S::kNamespaced);
  cm->short_names = {"cm"};
  cm->columns = {name_column(),
                 column("Data", "string", docs.field(core_type("ConfigMap"), "data")),
                 age_column()};
  cm->row = config_map_row;
  cm->validate =
      make_validator("ConfigMap", "", true, NameRule::kDNS1123Subdomain, validate_config_map);
  registry.add(cm);

  auto ep = new_resource(docs, t, "", "Endpoints", "endpoints", S::kNamespaced);
  ep->singular = "endpoints";
  ep->short_names = {"ep"};
  ep->columns = {name_column(),
                 column("Endpoints", "string", docs.field(core_type("Endpoints"), "subsets")),
                 age_column()};
  ep->row = endpoints_row;
  ep->defaults = default_endpoints;
  ep->validate =
      make_validator("Endpoints", "", true, NameRule::kDNS1123Subdomain, validate_endpoints);
  registry.add(ep);

  auto ev = new_resource(docs, t, "", "Event", "events", S::kNamespaced);
  ev->short_names = {"ev"};
  ColumnDef event_name = name_column();
  event_name.priority = 1;
  ev->columns = {
      column("Last Seen", "string", docs.field(core_type("Event"), "lastTimestamp")),
      column("Type", "string", docs.field(core_type("Event"), "type")),
      column("Reason", "string", docs.field(core_type("Event"), "reason")),
      column("Object", "string", docs.field(core_type("Event"), "involvedObject")),
      column("Subobject", "string", docs.field(core_type("ObjectReference"), "fieldPath"), 1),
      column("Source", "string", docs.field(core_type("Event"), "source"), 1),
      column("Message", "string", docs.field(core_type("Event"), "message")),
      column("First Seen", "string", docs.field(core_type("Event"), "firstTimestamp"), 1),
      column("Count", "string", docs.field(core_type("Event"), "count"), 1),
      event_name,
  };
  ev->row = event_row;
  ev->validate = make_validator("Event", "", true, NameRule::kDNS1123Subdomain, validate_event);
  registry.add(ev);

  auto lr = new_resource(docs, t, "", "LimitRange", "limitranges", S::kNamespaced);
  lr->short_names = {"limits"};
  lr->defaults = default_limit_range;
  lr->validate =
      make_validator("LimitRange", "", true, NameRule::kDNS1123Subdomain, validate_limit_range);
  registry.add(lr);

  auto ns = new_resource(docs, t, "", "Namespace", "namespaces", S::kCluster);
  ns->short_names = {"ns"};
  ns->verbs = {"create", "delete", "get", "list", "patch", "update", "watch"};
  ns->subresources = {{"finalize", "", "v1", "Namespace", {"update"}},
                      status_subresource("", "Namespace")};
  ns->has_status_subresource = true;
  ns->columns = {name_column(), column("Status", "string", "The status of the namespace"),
                 age_column()};
  ns->row = namespace_row;
  ns->defaults = default_namespace;
  ns->validate =
      make_validator("Namespace", "", false, NameRule::kDNS1123Label, validate_namespace);
  registry.add(ns);

  auto no = new_resource(docs, t, "", "Node", "nodes", S::kCluster);
  no->short_names = {"no"};
  no->subresources = {status_subresource("", "Node")};
  no->has_status_subresource = true;
  no->columns = {
      name_column(),
      column("Status", "string", "The status of the node"),
      column("Roles", "string", "The roles of the node"),
      age_column(),
      column("Version", "string", docs.field(core_type("NodeSystemInfo"), "kubeletVersion")),
      column("Internal-IP", "string", docs.field(core_type("NodeStatus"), "addresses"), 1),
      column("External-IP", "string", docs.field(core_type("NodeStatus"), "addresses"), 1),
      column("OS-Image", "string", docs.field(core_type("NodeSystemInfo"), "osImage"), 1),
      column("Kernel-Version", "string", docs.field(core_type("NodeSystemInfo"), "kernelVersion"),
             1),
      column("Container-Runtime", "string",
             docs.field(core_type("NodeSystemInfo"), "containerRuntimeVersion"), 1),
  };
  no->row = node_row;
  no->defaults = default_node;
  no->validate = make_validator("Node", "", false, NameRule::kDNS1123Subdomain, validate_node);
  registry.add(no);

  auto pvc =
      new_resource(docs, t, "", "PersistentVolumeClaim", "persistentvolumeclaims", S::kNamespaced);
  pvc->short_names = {"pvc"};
  pvc->subresources = {status_subresource("", "PersistentVolumeClaim")};
  pvc->has_status_subresource = true;
  pvc->columns = {
      name_column(),
      column("Status", "string", docs.field(core_type("PersistentVolumeClaimStatus"), "phase")),
      column("Volume", "string", docs.field(core_type("PersistentVolumeClaimSpec"), "volumeName")),
      column("Capacity", "string",
             docs.field(core_type("PersistentVolumeClaimStatus"), "capacity")),
      column("Access Modes", "string",
             docs.field(core_type("PersistentVolumeClaimStatus"), "accessModes")),
      column("StorageClass", "string", "StorageClass of the pvc"),
      column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
      age_column(),
      column("VolumeMode", "string",
             docs.field(core_type("PersistentVolumeClaimSpec"), "volumeMode"), 1),
  };
  pvc->row = persistent_volume_claim_row;
  pvc->defaults = default_persistent_volume_claim;
  pvc->validate = make_validator("PersistentVolumeClaim", "", true, NameRule::kDNS1123Subdomain,
                                 validate_persistent_volume_claim);
  registry.add(pvc);

  auto pv = new_resource(docs, t, "", "PersistentVolume", "persistentvolumes", S::kCluster);
  pv->short_names = {"pv"};
  pv->subresources = {status_subresource("", "PersistentVolume")};
  pv->has_status_subresource = true;
  pv->columns = {
      name_column(),
      column("Capacity", "string", docs.field(core_type("PersistentVolumeSpec"), "capacity")),
      column("Access Modes", "string",
             docs.field(core_type("PersistentVolumeSpec"), "accessModes")),
      column("Reclaim Policy", "string",
             docs.field(core_type("PersistentVolumeSpec"), "persistentVolumeReclaimPolicy")),
      column("Status", "string", docs.field(core_type("PersistentVolumeStatus"), "phase")),
      column("Claim", "string", docs.field(core_type("PersistentVolumeSpec"), "claimRef")),
      column("StorageClass", "string", "StorageClass of the pv"),
      column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
      column("Reason", "string", docs.field(core_type("PersistentVolumeStatus"), "reason")),
      age_column(),
      column("VolumeMode", "string", docs.field(core_type("PersistentVolumeSpec"), "volumeMode"),
             1),
  };
  pv->row = persistent_volume_row;
  pv->defaults = default_persistent_volume;
  pv->validate = make_validator("PersistentVolume", "", false, NameRule::kDNS1123Subdomain,
                                validate_persistent_volume);
  registry.add(pv);

  auto po = new_resource(docs, t, "", "Pod", "pods", S::kNamespaced);
  po->short_names = {"po"};
  po->categories = {"all"};
  po->subresources = {
      {"attach", "", "v1", "PodAttachOptions", {"create", "get"}},
      {"binding", "", "v1", "Binding", {"create"}},
      {"ephemeralcontainers", "", "v1", "Pod", {"get", "patch", "update"}},
      {"eviction", "policy", "v1", "Eviction", {"create"}},
      {"exec", "", "v1", "PodExecOptions", {"create", "get"}},
      {"log", "", "v1", "Pod", {"get"}},
      {"portforward", "", "v1", "PodPortForwardOptions", {"create", "get"}},
      status_subresource("", "Pod"),
  };
  po->has_status_subresource = true;
  po->columns = pod_columns(docs);
  po->row = pod_row;
  po->defaults = default_pod;
  po->validate = make_validator("Pod", "", true, NameRule::kDNS1123Subdomain, validate_pod);
  registry.add(po);

  auto rq = new_resource(docs, t, "", "ResourceQuota", "resourcequotas", S::kNamespaced);
  rq->short_names = {"quota"};
  rq->subresources = {status_subresource("", "ResourceQuota")};
  rq->has_status_subresource = true;
  rq->columns = {
      name_column(),
      column("Request", "string",
             "Request represents a minimum amount of cpu/memory that a container may consume."),
      column("Limit", "string",
             "Limits control the maximum amount of cpu/memory that a container may use "
             "independent of contention on the node."),
      age_column(),
  };
  rq->row = resource_quota_row;
  rq->defaults = ensure_status;
  rq->validate = make_validator("ResourceQuota", "", true, NameRule::kDNS1123Subdomain,
                                validate_resource_quota);
  registry.add(rq);

  auto secret = new_resource(docs, t, "", "Secret", "secrets", S::kNamespaced);
  secret->columns = {
      name_column(), column("Type", "string", docs.field(core_type("Secret"), "type")),
      column("Data", "string", docs.field(core_type("Secret"), "data")), age_column()};
  secret->row = secret_row;
  secret->defaults = default_secret;
  secret->validate =
      make_validator("Secret", "", true, NameRule::kDNS1123Subdomain, validate_secret);
  registry.add(secret);

  auto sa = new_resource(docs, t, "", "ServiceAccount", "serviceaccounts", S::kNamespaced);
  sa->short_names = {"sa"};
  sa->subresources = {{"token", "authentication.k8s.io", "v1", "TokenRequest", {"create"}}};
  sa->columns = {name_column(),
                 column("Secrets", "string", docs.field(core_type("ServiceAccount"), "secrets")),
                 age_column()};
  sa->row = service_account_row;
  sa->validate = make_validator("ServiceAccount", "", true, NameRule::kDNS1123Subdomain);
  registry.add(sa);

  auto svc = new_resource(docs, t, "", "Service", "services", S::kNamespaced);
  svc->short_names = {"svc"};
  svc->categories = {"all"};
  svc->subresources = {status_subresource("", "Service")};
  svc->has_status_subresource = true;
  svc->columns = {
      name_column(),
      column("Type", "string", docs.field(core_type("ServiceSpec"), "type")),
      column("Cluster-IP", "string", docs.field(core_type("ServiceSpec"), "clusterIP")),
      column("External-IP", "string", docs.field(core_type("ServiceSpec"), "externalIPs")),
      column("Port(s)", "string", docs.field(core_type("ServiceSpec"), "ports")),
      age_column(),
      column("Selector", "string", docs.field(core_type("ServiceSpec"), "selector"), 1),
  };
  svc->row = service_row;
  svc->defaults = default_service;
  svc->validate = make_validator("Service", "", true, NameRule::kDNS1035Label, validate_service);
  registry.add(svc);
}

}  // namespace skiff::api::builtin
