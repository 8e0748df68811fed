#include "apiserver/strategy.h"

#include <arpa/inet.h>

#include <map>
#include <nlohmann/json.hpp>

#include "api/builtin/pods.h"

namespace skiff::apiserver {

using nlohmann::json;

bool uses_generation(const api::ResourceDef& d) {
  if (d.crd) return true;
  static const char* kGroups[] = {"apps",   "batch",  "autoscaling", "policy", "networking.k8s.io",
                                  "apiextensions.k8s.io"};
  for (const char* g : kGroups) {
    if (d.group == g) return true;
  }
  return false;
}

namespace {

}  // namespace

namespace {
// What Kubernetes' CRD controllers record once a definition's names are accepted and its
// resources are served (skiff serves them as the write commits).
json crd_status(const json& crd, const std::string& now) {
  json spec = crd.value("spec", json::object());
  json stored = json::array();
  if (auto vs = spec.find("versions"); vs != spec.end() && vs->is_array()) {
    for (const auto& v : *vs) {
      if (v.value("storage", false)) stored.push_back(v.value("name", ""));
    }
  }
  return {{"acceptedNames", spec.value("names", json::object())},
          {"conditions",
           json::array({{{"type", "NamesAccepted"},
                         {"status", "True"},
                         {"reason", "NoConflicts"},
                         {"message", "no conflicts found"},
                         {"lastTransitionTime", now}},
                        {{"type", "Established"},
                         {"status", "True"},
                         {"reason", "InitialNamesAccepted"},
                         {"message", "the initial names have been accepted"},
                         {"lastTransitionTime", now}}})},
          {"storedVersions", stored}};
}
}  // namespace

void prepare_status_for_create(const api::ResourceDef& d, json& obj) {
  if (d.group.empty() && d.resource == "nodes") return;  // a node agent reports its own status
  if (d.has_status_subresource) obj.erase("status");
  if (d.group == "apiextensions.k8s.io" && d.resource == "customresourcedefinitions") {
    obj["status"] = crd_status(obj, obj["metadata"].value("creationTimestamp", ""));
    return;
  }
  if (!d.group.empty()) return;
  if (d.resource == "pods") {
    obj["status"] = {{"phase", "Pending"}, {"qosClass", api::pod_qos_class(obj)}};
  } else if (d.resource == "namespaces") {
    obj["status"] = {{"phase", "Active"}};
  } else if (d.resource == "persistentvolumes" || d.resource == "persistentvolumeclaims") {
    obj["status"] = {{"phase", "Pending"}};
  } else if (d.resource == "services") {
    obj["status"] = {{"loadBalancer", json::object()}};
  }
}

namespace {

bool is_service(const api::ResourceDef& d) { return d.group.empty() && d.resource == "services"; }

Status service_invalid(const json& svc, const std::string& field, const std::string& msg,
                       const char* reason = "FieldValueInvalid") {
  std::string name = svc.value("metadata", json::object()).value("name", "");
  Status s = Status::Invalid("Service \"" + name + "\" is invalid: " + field + ": " + msg);
  s.add_cause({reason, msg, field});
  return s;
}

bool wants_node_ports(const json& spec) {
  std::string type = spec.value("type", "ClusterIP");
  return type == "NodePort" || type == "LoadBalancer";
}

}  // namespace

Status allocate_for_create(ServerContext& ctx, const api::ResourceDef& d, json& obj) {
  if (!is_service(d)) return Status::Ok();
  json& spec = obj["spec"];
  if (!spec.is_object()) return Status::Ok();
  std::string type = spec.value("type", "ClusterIP");
  if (type != "ExternalName") {
    std::string wanted = spec.value("clusterIP", "");
    if (wanted != "None") {
      auto ip = ctx.services->allocate_ip(wanted);
      if (!ip.ok()) {
        return service_invalid(obj, "spec.clusterIPs", "Invalid value: []string{\"" + wanted +
                                                           "\"}: " + ip.status().message());
      }
      spec["clusterIP"] = *ip;
      spec["clusterIPs"] = json::array({*ip});
    } else {
      spec["clusterIPs"] = json::array({"None"});
    }
  }
  if (wants_node_ports(spec) && spec.contains("ports") && spec["ports"].is_array()) {
    int i = 0;
    for (auto& p : spec["ports"]) {
      int wanted = p.value("nodePort", 0);
      auto port = ctx.services->allocate_node_port(wanted);
      if (!port.ok()) {
        return service_invalid(obj, "spec.ports[" + std::to_string(i) + "].nodePort",
                               "Invalid value: " + std::to_string(wanted) + ": " +
                                   port.status().message());
      }
      p["nodePort"] = *port;
      ++i;
    }
  }
  return Status::Ok();
}

Status allocate_for_update(ServerContext& ctx, const api::ResourceDef& d, json& obj,
                           const json& old) {
  if (!is_service(d)) return Status::Ok();
  json& spec = obj["spec"];
  const json old_spec = old.value("spec", json::object());
  if (!spec.is_object()) return Status::Ok();
  // Allocated values the client left out are kept, as Kubernetes does.
  std::string old_ip = old_spec.value("clusterIP", "");
  std::string new_ip = spec.value("clusterIP", "");
  if (new_ip.empty() && !old_ip.empty() && spec.value("type", "ClusterIP") != "ExternalName") {
    spec["clusterIP"] = old_ip;
    if (old_spec.contains("clusterIPs")) spec["clusterIPs"] = old_spec["clusterIPs"];
    new_ip = old_ip;
  }
  if (!old_ip.empty() && new_ip != old_ip && spec.value("type", "ClusterIP") != "ExternalName") {
    return service_invalid(obj, "spec.clusterIPs[0]",
                           "Invalid value: \"" + new_ip + "\": field is immutable");
  }
  if (old_ip.empty() && new_ip.empty() && spec.value("type", "ClusterIP") != "ExternalName") {
    auto ip = ctx.services->allocate_ip("");
    if (!ip.ok()) return service_invalid(obj, "spec.clusterIPs", ip.status().message());
    spec["clusterIP"] = *ip;
    spec["clusterIPs"] = json::array({*ip});
  }
  if (wants_node_ports(spec) && spec.contains("ports") && spec["ports"].is_array()) {
    std::map<std::pair<int, std::string>, int> old_ports;
    if (old_spec.contains("ports") && old_spec["ports"].is_array()) {
      for (const auto& p : old_spec["ports"]) {
        if (p.value("nodePort", 0) > 0) {
          old_ports[{p.value("port", 0), p.value("protocol", "TCP")}] = p.value("nodePort", 0);
        }
      }
    }
    int i = 0;
    for (auto& p : spec["ports"]) {
      int wanted = p.value("nodePort", 0);
      auto it = old_ports.find({p.value("port", 0), p.value("protocol", "TCP")});
      if (wanted == 0 && it != old_ports.end()) {
        p["nodePort"] = it->second;
      } else if (it == old_ports.end() || wanted != it->second) {
        auto port = ctx.services->allocate_node_port(wanted);
        if (!port.ok()) {
          return service_invalid(obj, "spec.ports[" + std::to_string(i) + "].nodePort",
                                 "Invalid value: " + std::to_string(wanted) + ": " +
                                     port.status().message());
        }
        p["nodePort"] = *port;
      }
      ++i;
    }
  } else if (spec.contains("ports") && spec["ports"].is_array()) {
    for (auto& p : spec["ports"]) p.erase("nodePort");
  }
  return Status::Ok();
}

namespace {

// Paths are at most two levels deep: the watch cache indexes a summary of each object.
const std::map<std::string, std::vector<std::string>, std::less<>>& field_table() {
  static const auto* table = new std::map<std::string, std::vector<std::string>, std::less<>>{
      {"/pods",
       {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"}},
      {"/events",
       {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}},
      {"/secrets", {"type"}},
      {"/namespaces", {"status.phase"}},
      {"/nodes", {"spec.unschedulable"}},
      {"/replicationcontrollers", {"status.replicas"}},
      {"apps/replicasets", {"status.replicas"}},
      {"batch/jobs", {"status.successful"}},
      {"/services", {"spec.clusterIP", "spec.type"}},
      {"events.k8s.io/events",
       {"regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
        "reason", "type", "reportingController"}},
      {"certificates.k8s.io/certificatesigningrequests", {"spec.signerName"}},
  };
  return *table;
}

std::string table_key(std::string_view group, std::string_view resource) {
  return std::string(group) + "/" + std::string(resource);
}

// Renders a scalar as a field selector sees it ("true", "3", "Running").
bool scalar_text(const json& v, std::string* out) {
  if (v.is_string()) {
    *out = v.get<std::string>();
  } else if (v.is_boolean()) {
    *out = v.get<bool>() ? "true" : "false";
  } else if (v.is_number()) {
    *out = v.dump();
  } else {
    return false;
  }
  return true;
}

}  // namespace

const std::vector<std::string>& selectable_fields(std::string_view group,
                                                  std::string_view resource) {
  static const std::vector<std::string> kNone;
  const auto& t = field_table();
  auto it = t.find(table_key(group, resource));
  return it == t.end() ? kNone : it->second;
}

void index_fields(std::string_view key, const json& obj, Fields* out) {
  // key = /registry/<group>/<resource>/...
  size_t a = key.find('/', 1);
  if (a == std::string_view::npos) return;
  size_t b = key.find('/', a + 1);
  if (b == std::string_view::npos) return;
  size_t c = key.find('/', b + 1);
  if (c == std::string_view::npos) return;
  std::string_view group = key.substr(a + 1, b - a - 1);
  std::string_view resource = key.substr(b + 1, c - b - 1);
  if (group == "core") group = "";
  for (const std::string& path : selectable_fields(group, resource)) {
    const json* cur = &obj;
    size_t start = 0;
    bool found = true;
    while (start <= path.size()) {
      size_t dot = path.find('.', start);
      if (dot == std::string::npos) dot = path.size();
      std::string part = path.substr(start, dot - start);
      if (!cur->is_object()) {
        found = false;
        break;
      }
      auto it = cur->find(part);
      if (it == cur->end()) {
        found = false;
        break;
      }
      cur = &*it;
      start = dot + 1;
    }
    std::string text;
    if (found && scalar_text(*cur, &text)) {
      out->emplace_back(path, std::move(text));
    } else {
      // Absent fields select as their zero value, as Kubernetes' field sets do.
      static const char* kFalseFields[] = {"spec.unschedulable", "spec.hostNetwork"};
      std::string zero;
      for (const char* f : kFalseFields) {
        if (path == f) zero = "false";
      }
      out->emplace_back(path, zero);
    }
  }
}

}  // namespace skiff::apiserver
