#include "controllers/nodelifecycle/node_lifecycle_controller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/informer.h"
#include "common/time.h"
#include "controllers/framework.h"
#include "controllers/nodelifecycle/taints.h"
#include "testing/test_server.h"

namespace skiff::controllers::nodelifecycle {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using skiff::testing::eventually;
using skiff::testing::TestServer;

client::ResourceRef node_leases() { return client::resources::kLeases.in(kNodeLeaseNamespace); }
client::ResourceRef default_pods() { return client::resources::kPods.in("default"); }

int64_t rv(const json& obj) {
  return std::atoll(obj["metadata"].value("resourceVersion", "0").c_str());
}

bool has_taint(const json& node, const std::string& key, const std::string& effect) {
  if (!node.contains("spec") || !node["spec"].contains("taints")) return false;
  for (const json& t : node["spec"]["taints"]) {
    if (t.value("key", "") == key && t.value("effect", "") == effect) return true;
  }
  return false;
}

bool being_deleted(const json& obj) {
  return obj.contains("metadata") && obj["metadata"].contains("deletionTimestamp");
}

// The controller driven by hand: reconcile is called directly, with a FakeClock that starts
// at the real time (objects carry the server's creation times).
class NodeLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-test");
    controller_client_ = server_.client("node-lifecycle-controller");
    informers_ = std::make_unique<client::InformerFactory>(*controller_client_);
    events_ = std::make_unique<EventRecorder>(*controller_client_, "node-lifecycle-controller");
    ControllerOptions options;
    options.node_monitor_grace_period = 40s;
    options.pod_eviction_timeout = 60s;
    ctx_ = std::make_unique<ControllerContext>(
        ControllerContext{*controller_client_, *informers_, *events_, clock_, options});
    controller_ = std::make_unique<NodeLifecycleController>(*ctx_);
    controller_->setup(queue_);
    informers_->start();
    ASSERT_TRUE(informers_->wait_for_sync(10s));
  }

  void TearDown() override {
    queue_.shutdown();
    informers_->stop();
  }

  client::Informer& informer(const client::ResourceRef& r) { return informers_->informer(r); }

  // Waits until the controller's cache holds `written` (or something newer).
  void await_cache(const client::ResourceRef& r, const json& written) {
    std::string ns = written["metadata"].value("namespace", "");
    std::string name = written["metadata"]["name"];
    ASSERT_TRUE(eventually([&] {
      auto cached = informer(r).get(ns, name);
      return cached && rv(*cached) >= rv(written);
    })) << name;
  }

  void await_gone(const client::ResourceRef& r, const std::string& ns, const std::string& name) {
    ASSERT_TRUE(eventually([&] { return informer(r).get(ns, name) == nullptr; })) << name;
  }

  json create(const client::ResourceRef& r, const json& obj) {
    auto c = client_->create(r, obj);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    if (!c.ok()) return json();
    json out = **c;
    await_cache(r, out);
    return out;
  }

  json get(const client::ResourceRef& r, const std::string& name) {
    auto g = client_->get(r, name);
    return g.ok() ? **g : json();
  }

  json ready_conditions(const std::string& status, TimePoint heartbeat) {
    std::string t = format_rfc3339(heartbeat);
    json out = json::array();
    for (auto [type, value] : {std::pair{"MemoryPressure", "False"},
                               std::pair{"DiskPressure", "False"},
                               std::pair{"PIDPressure", "False"},
                               std::pair{"Ready", status.c_str()}}) {
      out.push_back({{"type", type},
                     {"status", value},
                     {"reason", "Test"},
                     {"lastHeartbeatTime", t},
                     {"lastTransitionTime", t}});
    }
    return out;
  }

  // A node as a kubelet registers it, with its Lease.
  json create_node(const std::string& name, const std::string& ready = "True",
                   json spec = json::object()) {
    json node = {{"apiVersion", "v1"},
                 {"kind", "Node"},
                 {"metadata", {{"name", name}}},
                 {"spec", spec},
                 {"status", {{"conditions", ready_conditions(ready, clock_.now())}}}};
    json created = create(client::resources::kNodes, node);
    renew_lease(name);
    return created;
  }

  // A kubelet posting its status.
  void post_status(const std::string& name, const std::string& ready) {
    json patch = {{"status", {{"conditions", ready_conditions(ready, clock_.now())}}}};
    auto r = client_->patch(client::resources::kNodes, name, client::PatchType::kStrategicMerge,
                            patch.dump(), "status");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    await_cache(client::resources::kNodes, **r);
  }

  void renew_lease(const std::string& name) {
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", name}, {"namespace", kNodeLeaseNamespace}}},
                  {"spec",
                   {{"holderIdentity", name},
                    {"leaseDurationSeconds", 40},
                    {"renewTime", format_rfc3339_micro(clock_.now())}}}};
    auto existing = client_->get(node_leases(), name);
    Result<client::ObjectPtr> r = Status::NotFound("");
    if (existing.ok()) {
      json patch = {{"spec", {{"renewTime", format_rfc3339_micro(clock_.now())}}}};
      r = client_->patch(node_leases(), name, client::PatchType::kMerge, patch.dump());
    } else {
      r = client_->create(node_leases(), lease);
    }
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    await_cache(node_leases(), **r);
  }

  json create_pod(const std::string& name, const std::string& node,
                  json tolerations = json::array()) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"nodeName", node},
                  {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
    if (!tolerations.empty()) pod["spec"]["tolerations"] = tolerations;
    json created = create(default_pods(), pod);
    // Running and Ready, as its kubelet reported.
    json status = {{"status",
                    {{"phase", "Running"},
                     {"conditions",
                      {{{"type", "Ready"}, {"status", "True"}},
                       {{"type", "ContainersReady"}, {"status", "True"}}}}}}};
    auto r = client_->patch(default_pods(), name, client::PatchType::kStrategicMerge,
                            status.dump(), "status");
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (r.ok()) await_cache(default_pods(), **r);
    return created;
  }

  Status reconcile(const std::string& node) { return controller_->reconcile(node); }

  // Reconciles, then waits for the cache to show the node as the API has it, so that the
  // next reconcile sees the controller's own writes.
  void reconcile_and_sync(const std::string& node) {
    Status s = reconcile(node);
    ASSERT_TRUE(s.ok()) << s.to_string();
    json current = get(client::resources::kNodes, node);
    if (!current.is_null()) await_cache(client::resources::kNodes, current);
  }

  std::vector<json> events(const std::string& reason, const std::string& name) {
    events_->flush();
    std::vector<json> out;
    auto l = client_->list(client::resources::kEvents);
    if (!l.ok()) return out;
    for (const auto& e : l->items) {
      if ((*e).value("reason", "") == reason &&
          (*e)["involvedObject"].value("name", "") == name) {
        out.push_back(*e);
      }
    }
    return out;
  }

  TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::Client> controller_client_;
  FakeClock clock_{now()};
  std::unique_ptr<client::InformerFactory> informers_;
  std::unique_ptr<EventRecorder> events_;
  std::unique_ptr<ControllerContext> ctx_;
  WorkQueue queue_{"node_lifecycle"};
  std::unique_ptr<NodeLifecycleController> controller_;
};

TEST_F(NodeLifecycleTest, NodeRenewingItsLeaseStaysReady) {
  create_node("alive");
  reconcile_and_sync("alive");
  for (int i = 0; i < 4; ++i) {
    clock_.advance(30s);
    renew_lease("alive");
    reconcile_and_sync("alive");
  }
  json node = get(client::resources::kNodes, "alive");
  EXPECT_EQ(condition_status(node, "Ready"), "True");
  EXPECT_FALSE(node["spec"].contains("taints"));
}

TEST_F(NodeLifecycleTest, HeartbeatsAloneKeepANodeReady) {
  create_node("posting");
  reconcile_and_sync("posting");
  for (int i = 0; i < 3; ++i) {
    clock_.advance(30s);
    post_status("posting", "True");
    reconcile_and_sync("posting");
  }
  EXPECT_EQ(condition_status(get(client::resources::kNodes, "posting"), "Ready"), "True");
}

TEST_F(NodeLifecycleTest, SilentNodeGoesUnknownIsTaintedAndItsPodsNotReady) {
  create_node("silent");
  create_pod("web", "silent");
  reconcile_and_sync("silent");

  clock_.advance(39s);
  reconcile_and_sync("silent");
  EXPECT_EQ(condition_status(get(client::resources::kNodes, "silent"), "Ready"), "True")
      << "still within the grace period";

  clock_.advance(2s);
  reconcile_and_sync("silent");
  json node = get(client::resources::kNodes, "silent");
  const json* ready = find_condition(node, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ((*ready)["status"], "Unknown");
  EXPECT_EQ((*ready)["reason"], "NodeStatusUnknown");
  EXPECT_EQ((*ready)["message"], "Kubelet stopped posting node status.");
  for (const char* type : {"MemoryPressure", "DiskPressure", "PIDPressure"}) {
    EXPECT_EQ(condition_status(node, type), "Unknown") << type;
  }
  EXPECT_TRUE(has_taint(node, kTaintUnreachable, "NoSchedule"));
  EXPECT_TRUE(has_taint(node, kTaintUnreachable, "NoExecute"));
  for (const json& t : node["spec"]["taints"]) {
    if (t["effect"] == "NoExecute") {
      EXPECT_EQ(t["timeAdded"], format_rfc3339(clock_.now()));
    }
  }
  json pod = get(default_pods(), "web");
  EXPECT_EQ(condition_status(pod, "Ready"), "False");
  EXPECT_EQ(condition_status(pod, "ContainersReady"), "True") << "only Ready is changed";
  EXPECT_FALSE(being_deleted(pod)) << "the default toleration has not run out yet";
  EXPECT_EQ(events("NodeNotReady", "silent").size(), 1u);
  EXPECT_EQ(events("NodeNotReady", "web").size(), 1u);

  // Reconciling again changes nothing.
  reconcile_and_sync("silent");
  EXPECT_EQ(rv(get(client::resources::kNodes, "silent")), rv(node));
}

TEST_F(NodeLifecycleTest, NodeThatComesBackLosesItsTaints) {
  create_node("flaky", "True", {{"taints", {{{"key", "team"}, {"value", "a"},
                                             {"effect", "NoSchedule"}}}}});
  reconcile_and_sync("flaky");
  clock_.advance(41s);
  reconcile_and_sync("flaky");
  ASSERT_TRUE(has_taint(get(client::resources::kNodes, "flaky"), kTaintUnreachable, "NoExecute"));

  renew_lease("flaky");
  post_status("flaky", "True");
  reconcile_and_sync("flaky");
  json node = get(client::resources::kNodes, "flaky");
  EXPECT_EQ(condition_status(node, "Ready"), "True");
  EXPECT_FALSE(has_taint(node, kTaintUnreachable, "NoExecute"));
  EXPECT_FALSE(has_taint(node, kTaintUnreachable, "NoSchedule"));
  EXPECT_TRUE(has_taint(node, "team", "NoSchedule")) << "taints of others stay";
}

TEST_F(NodeLifecycleTest, NotReadyNodeGetsNotReadyTaints) {
  create_node("sick", "False", {{"unschedulable", true}});
  reconcile_and_sync("sick");
  json node = get(client::resources::kNodes, "sick");
  EXPECT_TRUE(has_taint(node, kTaintNotReady, "NoSchedule"));
  EXPECT_TRUE(has_taint(node, kTaintNotReady, "NoExecute"));
  EXPECT_TRUE(has_taint(node, kTaintUnschedulable, "NoSchedule"));
  EXPECT_FALSE(has_taint(node, kTaintUnreachable, "NoExecute"));

  // Then it goes silent: not-ready is swapped for unreachable.
  clock_.advance(41s);
  reconcile_and_sync("sick");
  node = get(client::resources::kNodes, "sick");
  EXPECT_TRUE(has_taint(node, kTaintUnreachable, "NoExecute"));
  EXPECT_FALSE(has_taint(node, kTaintNotReady, "NoExecute"));
  EXPECT_FALSE(has_taint(node, kTaintNotReady, "NoSchedule"));
}

TEST_F(NodeLifecycleTest, NodeThatNeverPostedGetsTheStartupGracePeriod) {
  json bare = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "bare"}}}};
  json created = create(client::resources::kNodes, bare);
  clock_.set(parse_rfc3339(created["metadata"]["creationTimestamp"].get<std::string>()).value() +
             59s);
  reconcile_and_sync("bare");
  EXPECT_EQ(find_condition(get(client::resources::kNodes, "bare"), "Ready"), nullptr);
  clock_.advance(2s);
  reconcile_and_sync("bare");
  json node = get(client::resources::kNodes, "bare");
  const json* ready = find_condition(node, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ((*ready)["status"], "Unknown");
  EXPECT_EQ((*ready)["reason"], "NodeStatusNeverUpdated");
  EXPECT_TRUE(has_taint(node, kTaintUnreachable, "NoExecute"));
}

TEST_F(NodeLifecycleTest, PodsAreEvictedAsTheirTolerationsRunOut) {
  create_node("lost");
  create_node("fine");
  create_pod("default-toleration", "lost");
  create_pod("short-toleration", "lost",
             {{{"key", kTaintUnreachable},
               {"operator", "Exists"},
               {"effect", "NoExecute"},
               {"tolerationSeconds", 10}}});
  create_pod("forever", "lost", {{{"key", kTaintUnreachable}, {"operator", "Exists"}}});
  create_pod("elsewhere", "fine");
  reconcile_and_sync("lost");
  reconcile_and_sync("fine");

  clock_.advance(41s);
  renew_lease("fine");
  reconcile_and_sync("fine");
  reconcile_and_sync("lost");
  EXPECT_FALSE(being_deleted(get(default_pods(), "short-toleration")));

  clock_.advance(10s);
  reconcile_and_sync("lost");
  json evicted = get(default_pods(), "short-toleration");
  EXPECT_TRUE(being_deleted(evicted)) << "10 s after the taint";
  EXPECT_EQ(condition_status(evicted, "DisruptionTarget"), "True");
  EXPECT_FALSE(being_deleted(get(default_pods(), "default-toleration")));

  clock_.advance(50s);
  reconcile_and_sync("lost");
  EXPECT_TRUE(being_deleted(get(default_pods(), "default-toleration")))
      << "pod_eviction_timeout (60 s) after the taint";
  EXPECT_FALSE(being_deleted(get(default_pods(), "forever")));
  EXPECT_FALSE(being_deleted(get(default_pods(), "elsewhere")));

  auto marked = events("TaintManagerEviction", "short-toleration");
  ASSERT_EQ(marked.size(), 1u);
  EXPECT_EQ(marked[0]["message"], "Marking for deletion Pod default/short-toleration");
  EXPECT_EQ(marked[0]["source"]["component"], "node-lifecycle-controller");
}

TEST_F(NodeLifecycleTest, UntoleratedNoExecuteTaintEvictsAtOnce) {
  create_node("dedicated", "True",
              {{"taints", {{{"key", "dedicated"}, {"value", "db"}, {"effect", "NoExecute"}}}}});
  create_pod("intruder", "dedicated");
  create_pod("guest", "dedicated",
             {{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "db"},
               {"effect", "NoExecute"}}});
  reconcile_and_sync("dedicated");
  EXPECT_TRUE(being_deleted(get(default_pods(), "intruder")));
  EXPECT_FALSE(being_deleted(get(default_pods(), "guest")));
}

TEST_F(NodeLifecycleTest, EvictionIsCancelledWhenTheNodeRecovers) {
  create_node("blip");
  create_pod("patient", "blip");
  reconcile_and_sync("blip");
  clock_.advance(41s);
  reconcile_and_sync("blip");
  clock_.advance(30s);
  renew_lease("blip");
  post_status("blip", "True");
  reconcile_and_sync("blip");
  clock_.advance(60s);
  renew_lease("blip");
  reconcile_and_sync("blip");
  EXPECT_FALSE(being_deleted(get(default_pods(), "patient")));
  auto cancelled = events("TaintManagerEviction", "patient");
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0]["message"], "Cancelling deletion of Pod default/patient");
}

TEST_F(NodeLifecycleTest, DeletedNodeIsForgotten) {
  create_node("temp");
  reconcile_and_sync("temp");
  ASSERT_TRUE(client_->remove(client::resources::kNodes, "temp").ok());
  await_gone(client::resources::kNodes, "", "temp");
  EXPECT_TRUE(reconcile("temp").ok());
  // A new node of that name starts with a fresh grace period.
  clock_.advance(100s);
  create_node("temp");
  reconcile_and_sync("temp");
  EXPECT_EQ(condition_status(get(client::resources::kNodes, "temp"), "Ready"), "True");
}

}  // namespace
}  // namespace skiff::controllers::nodelifecycle
