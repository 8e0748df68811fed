// A test bed for the cluster-wide controllers (garbage collector, namespace, service account,
// endpoints, endpoint slices): a real API server, a ControllerManager running the chosen
// controllers through the in-process client, and short helpers for the objects the tests
// write and wait on.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/client.h"
#include "controllers/framework.h"
#include "testing/test_server.h"

namespace skiff::controllers::testing_support {

using nlohmann::json;
using namespace std::chrono_literals;
using skiff::testing::eventually;

class ControllerHarness {
 public:
  explicit ControllerHarness(std::vector<std::string> controllers) {
    if (!server_.ok()) return;
    client_ = server_.client("controller-test");
    manager_client_ = server_.client("skiff-controller-manager");
    ManagerOptions o;
    o.identity = "controller-test";
    o.enabled = std::move(controllers);
    o.lease_duration = 2s;
    o.renew_deadline = 1500ms;
    o.retry_period = 200ms;
    manager_ = std::make_unique<ControllerManager>(*manager_client_, o);
    manager_->start();
  }
  ~ControllerHarness() {
    if (manager_) manager_->stop();
  }

  bool ok() const { return server_.ok() && manager_ != nullptr; }
  client::Client& client() { return *client_; }
  skiff::testing::TestServer& server() { return server_; }
  ControllerManager& manager() { return *manager_; }

  // Creates `obj` (its namespace from metadata), failing the test on error.
  json create(const client::ResourceRef& r, const json& obj) {
    auto created = client_->create(r, obj);
    EXPECT_TRUE(created.ok()) << created.status().to_string() << " creating " << obj.dump();
    return created.ok() ? **created : json();
  }

  void create_namespace(const std::string& ns) {
    create(client::resources::kNamespaces,
           {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }

  // The object, or null when it does not exist (other errors fail the test).
  client::ObjectPtr get(const client::ResourceRef& r, const std::string& name) {
    auto got = client_->get(r, name);
    if (!got.ok()) {
      EXPECT_TRUE(got.status().is_not_found()) << got.status().to_string();
      return nullptr;
    }
    return *got;
  }

  bool exists(const client::ResourceRef& r, const std::string& name) {
    return get(r, name) != nullptr;
  }

  bool wait_gone(const client::ResourceRef& r, const std::string& name,
                 std::chrono::milliseconds timeout = 20s) {
    return eventually([&] { return !exists(r, name); }, timeout);
  }

  void remove(const client::ResourceRef& r, const std::string& name,
              const std::string& propagation = "") {
    client::DeleteOptions o;
    o.propagation_policy = propagation;
    auto removed = client_->remove(r, name, o);
    EXPECT_TRUE(removed.ok()) << removed.status().to_string() << " deleting " << name;
  }

  // Deletes at once (grace period 0), as a pod whose node is gone.
  void remove_now(const client::ResourceRef& r, const std::string& name) {
    client::DeleteOptions o;
    o.grace_period_seconds = 0;
    auto removed = client_->remove(r, name, o);
    EXPECT_TRUE(removed.ok()) << removed.status().to_string() << " deleting " << name;
  }

  // What a kubelet reports for a started pod: Running with `ip`, Ready or not.
  void set_pod_status(const std::string& ns, const std::string& name, const std::string& ip,
                      bool ready) {
    json status = {{"phase", "Running"},
                   {"podIP", ip},
                   {"podIPs", json::array({{{"ip", ip}}})},
                   {"conditions", json::array({{{"type", "Ready"},
                                                {"status", ready ? "True" : "False"}}})}};
    merge_patch(client::resources::kPods.in(ns), name, {{"status", status}}, "status");
  }

  void create_node(const std::string& name, json labels = json::object()) {
    json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}};
    if (!labels.empty()) node["metadata"]["labels"] = std::move(labels);
    create(client::resources::kNodes, node);
  }

  void merge_patch(const client::ResourceRef& r, const std::string& name, const json& patch,
                   const std::string& subresource = "") {
    auto patched = client_->patch(r, name, client::PatchType::kMerge, patch.dump(), subresource);
    EXPECT_TRUE(patched.ok()) << patched.status().to_string() << " patching " << name;
  }

 private:
  skiff::testing::TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::Client> manager_client_;
  std::unique_ptr<ControllerManager> manager_;
};

inline const json* member(const json& obj, std::initializer_list<const char*> path) {
  const json* cur = &obj;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->contains(p)) return nullptr;
    cur = &(*cur)[p];
  }
  return cur;
}

inline std::string str(const json& obj, std::initializer_list<const char*> path) {
  const json* v = member(obj, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

inline std::string uid_of(const json& obj) { return str(obj, {"metadata", "uid"}); }

inline bool being_deleted(const json& obj) {
  const json* ts = member(obj, {"metadata", "deletionTimestamp"});
  return ts != nullptr && !ts->is_null();
}

inline std::vector<std::string> finalizers_of(const json& obj) {
  std::vector<std::string> out;
  const json* f = member(obj, {"metadata", "finalizers"});
  if (f == nullptr || !f->is_array()) return out;
  for (const json& v : *f) out.push_back(v.get<std::string>());
  return out;
}

// An ownerReferences entry pointing at `owner`.
inline json owner_ref(const json& owner, bool block_owner_deletion = false,
                      bool controller = false) {
  json ref = {{"apiVersion", str(owner, {"apiVersion"})},
              {"kind", str(owner, {"kind"})},
              {"name", str(owner, {"metadata", "name"})},
              {"uid", uid_of(owner)}};
  if (block_owner_deletion) ref["blockOwnerDeletion"] = true;
  if (controller) ref["controller"] = true;
  return ref;
}

inline json config_map(const std::string& ns, const std::string& name,
                       json owner_refs = json::array(), json finalizers = json::array()) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", name}, {"namespace", ns}}},
             {"data", {{"k", "v"}}}};
  if (!owner_refs.empty()) cm["metadata"]["ownerReferences"] = std::move(owner_refs);
  if (!finalizers.empty()) cm["metadata"]["finalizers"] = std::move(finalizers);
  return cm;
}

inline json pod(const std::string& ns, const std::string& name, json labels = json::object(),
                json owner_refs = json::array()) {
  json p = {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec", {{"containers", json::array({{{"name", "app"}, {"image", "busybox"}}})}}}};
  if (!labels.empty()) p["metadata"]["labels"] = std::move(labels);
  if (!owner_refs.empty()) p["metadata"]["ownerReferences"] = std::move(owner_refs);
  return p;
}

// A pod on `node` whose one container offers `ports` ([{name, containerPort[, protocol]}]).
inline json serving_pod(const std::string& ns, const std::string& name, json labels,
                        const std::string& node, json ports) {
  json p = pod(ns, name, std::move(labels));
  p["spec"]["nodeName"] = node;
  p["spec"]["containers"][0]["ports"] = std::move(ports);
  return p;
}

}  // namespace skiff::controllers::testing_support
