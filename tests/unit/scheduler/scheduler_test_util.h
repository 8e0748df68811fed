// Builders of Node and Pod objects for the scheduler's tests, and a Cluster filled from them.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "scheduler/algorithm.h"
#include "scheduler/cluster.h"
#include "scheduler/convert.h"

namespace skiff::scheduler::testing {

using nlohmann::json;

class NodeBuilder {
 public:
  explicit NodeBuilder(std::string name) {
    obj_ = {{"apiVersion", "v1"},
            {"kind", "Node"},
            {"metadata", {{"name", std::move(name)}, {"labels", json::object()}}},
            {"spec", json::object()},
            {"status",
             {{"allocatable", {{"cpu", "4"}, {"memory", "8Gi"}, {"pods", "110"}}},
              {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
    obj_["metadata"]["labels"]["kubernetes.io/hostname"] = obj_["metadata"]["name"];
  }
  NodeBuilder& cpu(const std::string& q) { return alloc("cpu", q); }
  NodeBuilder& memory(const std::string& q) { return alloc("memory", q); }
  NodeBuilder& pods(int n) { return alloc("pods", std::to_string(n)); }
  NodeBuilder& alloc(const std::string& resource, const std::string& q) {
    obj_["status"]["allocatable"][resource] = q;
    return *this;
  }
  NodeBuilder& label(const std::string& k, const std::string& v) {
    obj_["metadata"]["labels"][k] = v;
    return *this;
  }
  NodeBuilder& taint(const std::string& key, const std::string& value, const std::string& effect) {
    json t = {{"key", key}, {"effect", effect}};
    if (!value.empty()) t["value"] = value;
    obj_["spec"]["taints"].push_back(t);
    return *this;
  }
  NodeBuilder& unschedulable() {
    obj_["spec"]["unschedulable"] = true;
    return *this;
  }
  NodeBuilder& ready(const std::string& status) {
    obj_["status"]["conditions"] = json::array({{{"type", "Ready"}, {"status", status}}});
    return *this;
  }
  NodeBuilder& no_conditions() {
    obj_["status"].erase("conditions");
    return *this;
  }
  const json& json_obj() const { return obj_; }
  operator const json&() const { return obj_; }  // NOLINT(google-explicit-constructor)

 private:
  json obj_;
};

class PodBuilder {
 public:
  explicit PodBuilder(std::string name, std::string ns = "default") {
    obj_ = {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata",
             {{"name", name},
              {"namespace", ns},
              {"uid", "uid-" + ns + "-" + name},
              {"labels", json::object()}}},
            {"spec",
             {{"schedulerName", "default-scheduler"},
              {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}},
            {"status", {{"phase", "Pending"}}}};
  }
  PodBuilder& cpu(const std::string& q) { return request("cpu", q); }
  PodBuilder& memory(const std::string& q) { return request("memory", q); }
  PodBuilder& request(const std::string& resource, const std::string& q) {
    obj_["spec"]["containers"][0]["resources"]["requests"][resource] = q;
    return *this;
  }
  PodBuilder& uid(const std::string& u) {
    obj_["metadata"]["uid"] = u;
    return *this;
  }
  PodBuilder& label(const std::string& k, const std::string& v) {
    obj_["metadata"]["labels"][k] = v;
    return *this;
  }
  PodBuilder& scheduler(const std::string& name) {
    obj_["spec"]["schedulerName"] = name;
    return *this;
  }
  PodBuilder& node(const std::string& name) {
    obj_["spec"]["nodeName"] = name;
    return *this;
  }
  PodBuilder& node_selector(const std::string& k, const std::string& v) {
    obj_["spec"]["nodeSelector"][k] = v;
    return *this;
  }
  PodBuilder& toleration(json t) {
    obj_["spec"]["tolerations"].push_back(std::move(t));
    return *this;
  }
  PodBuilder& host_port(int port, const std::string& ip = "", const std::string& proto = "") {
    json p = {{"containerPort", port}, {"hostPort", port}};
    if (!ip.empty()) p["hostIP"] = ip;
    if (!proto.empty()) p["protocol"] = proto;
    obj_["spec"]["containers"][0]["ports"].push_back(p);
    return *this;
  }
  PodBuilder& priority(int p) {
    obj_["spec"]["priority"] = p;
    return *this;
  }
  PodBuilder& preemption_never() {
    obj_["spec"]["preemptionPolicy"] = "Never";
    return *this;
  }
  // spec.affinity.<path> = value, e.g. set_affinity("nodeAffinity", {...}).
  PodBuilder& affinity(const std::string& kind, json value) {
    obj_["spec"]["affinity"][kind] = std::move(value);
    return *this;
  }
  json& spec() { return obj_["spec"]; }
  const json& json_obj() const { return obj_; }
  operator const json&() const { return obj_; }  // NOLINT(google-explicit-constructor)

 private:
  json obj_;
};

// A required pod (anti-)affinity term selecting pods with label key=value.
inline json pod_term(const std::string& key, const std::string& value,
                     const std::string& topology_key = "kubernetes.io/hostname") {
  return {{"labelSelector", {{"matchLabels", {{key, value}}}}}, {"topologyKey", topology_key}};
}

// A Cluster built from objects, with helpers to place pods.
class TestCluster {
 public:
  Cluster cluster;

  uint32_t add_node(const json& node) {
    return cluster.upsert_node(parse_node(node, cluster.interner()));
  }
  std::shared_ptr<const PodInfo> pod(const json& obj) { return parse_pod(obj, cluster.interner()); }
  // Places a pod (it must carry spec.nodeName).
  uint32_t add_pod(const json& obj) { return cluster.add_pod(pod(obj)); }

  Result<ScheduleResult> schedule(const json& pod_obj, const Profile& profile = Profile(),
                                  Diagnosis* d = nullptr) {
    auto p = pod(pod_obj);
    return schedule_one(cluster, *p, profile, state, d);
  }
  // Schedules and assumes the pod where it goes; returns the node ("" if none).
  std::string schedule_and_assume(const json& pod_obj, const Profile& profile = Profile()) {
    auto p = pod(pod_obj);
    auto r = schedule_one(cluster, *p, profile, state);
    if (!r.ok()) return "";
    cluster.assume(p, r->node_name);
    return r->node_name;
  }
  std::string message(const json& pod_obj) {
    Diagnosis d;
    auto r = schedule(pod_obj, Profile(), &d);
    return r.ok() ? "scheduled on " + r->node_name : d.message;
  }

  ScheduleState state{42};
};

}  // namespace skiff::scheduler::testing
