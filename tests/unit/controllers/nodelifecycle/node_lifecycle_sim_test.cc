// The node lifecycle controller run by a ControllerManager against simulated nodes, with
// short durations: a node whose kubelet stops goes NotReady, is tainted, loses its pods
// after the eviction timeout, and recovers when its kubelet comes back.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "controllers/framework.h"
#include "controllers/nodelifecycle/node_lifecycle_controller.h"
#include "controllers/nodelifecycle/taints.h"
#include "simnodes/sim_nodes.h"
#include "testing/test_server.h"

namespace skiff::controllers::nodelifecycle {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using skiff::testing::eventually;
using skiff::testing::TestServer;

client::ResourceRef default_pods() { return client::resources::kPods.in("default"); }

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

class NodeLifecycleSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("skiff-test");
    sim_client_ = server_.client("skiff-sim-nodes");
    manager_client_ = server_.client("skiff-controller-manager");

    simnodes::SimNodesOptions sim;
    sim.count = 2;
    sim.name_prefix = "sim-";
    sim.lease_renew_interval = 300ms;
    sim.deletion_delay = 50ms;
    sim.workers = 4;
    sim_ = std::make_unique<simnodes::SimNodes>(*sim_client_, sim);
    ASSERT_TRUE(sim_->start().ok());

    ManagerOptions o;
    o.identity = "node-lifecycle-test";
    o.enabled = {"node_lifecycle"};
    o.controller_options.node_monitor_grace_period = 2s;
    o.controller_options.pod_eviction_timeout = 2s;
    o.lease_duration = 2s;
    o.renew_deadline = 1500ms;
    o.retry_period = 200ms;
    manager_ = std::make_unique<ControllerManager>(*manager_client_, o);
    manager_->start();
  }

  void TearDown() override {
    if (manager_) manager_->stop();
    if (sim_) sim_->stop();
  }

  json get(const client::ResourceRef& r, const std::string& name) {
    auto g = client_->get(r, name);
    return g.ok() ? **g : json();
  }

  void create_pod(const std::string& name, const std::string& node) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
    auto r = client_->create(default_pods(), pod);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  TestServer server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::Client> sim_client_;
  std::unique_ptr<client::Client> manager_client_;
  std::unique_ptr<simnodes::SimNodes> sim_;
  std::unique_ptr<ControllerManager> manager_;
};

TEST_F(NodeLifecycleSimTest, StoppedKubeletLosesItsPodsAndItsNodeRecovers) {
  for (int i = 0; i < 3; ++i) create_pod("lost-" + std::to_string(i), "sim-0");
  create_pod("safe", "sim-1");
  auto running = [&](const std::string& name) {
    json pod = get(default_pods(), name);
    return pod.contains("status") && pod["status"].value("phase", "") == "Running" &&
           condition_status(pod, "Ready") == "True";
  };
  ASSERT_TRUE(eventually([&] {
    return running("lost-0") && running("lost-1") && running("lost-2") && running("safe");
  }));

  // Healthy nodes are left alone for longer than the grace period.
  ASSERT_TRUE(eventually([&] { return manager_->is_leader(); }));
  auto quiet_until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < quiet_until) {
    ASSERT_EQ(condition_status(get(client::resources::kNodes, "sim-0"), "Ready"), "True");
    std::this_thread::sleep_for(100ms);
  }

  ASSERT_TRUE(sim_->pause_node("sim-0").ok());
  ASSERT_TRUE(eventually([&] {
    json node = get(client::resources::kNodes, "sim-0");
    return condition_status(node, "Ready") == "Unknown" &&
           has_taint(node, kTaintUnreachable, "NoExecute") &&
           has_taint(node, kTaintUnreachable, "NoSchedule");
  })) << get(client::resources::kNodes, "sim-0").dump();
  EXPECT_EQ(condition_status(get(client::resources::kNodes, "sim-1"), "Ready"), "True");
  EXPECT_FALSE(has_taint(get(client::resources::kNodes, "sim-1"), kTaintUnreachable, "NoExecute"));

  // The pods are marked not ready, then evicted once the eviction timeout has passed; the
  // stopped kubelet cannot finalize them, so they stay Terminating.
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 3; ++i) {
      json pod = get(default_pods(), "lost-" + std::to_string(i));
      if (!being_deleted(pod) || condition_status(pod, "Ready") != "False") return false;
    }
    return true;
  }));
  json evicted = get(default_pods(), "lost-0");
  EXPECT_EQ(condition_status(evicted, "DisruptionTarget"), "True");
  EXPECT_FALSE(being_deleted(get(default_pods(), "safe")));
  EXPECT_TRUE(running("safe"));

  // The kubelet comes back: Ready again, taints gone, the evicted pods finalized.
  ASSERT_TRUE(sim_->resume_node("sim-0").ok());
  ASSERT_TRUE(eventually([&] {
    json node = get(client::resources::kNodes, "sim-0");
    return condition_status(node, "Ready") == "True" &&
           !has_taint(node, kTaintUnreachable, "NoExecute") &&
           !has_taint(node, kTaintUnreachable, "NoSchedule");
  })) << get(client::resources::kNodes, "sim-0").dump();
  EXPECT_TRUE(eventually([&] {
    for (int i = 0; i < 3; ++i) {
      if (!get(default_pods(), "lost-" + std::to_string(i)).is_null()) return false;
    }
    return true;
  }));
  EXPECT_TRUE(running("safe"));

  // A pod bound to the recovered node runs there again.
  create_pod("back", "sim-0");
  EXPECT_TRUE(eventually([&] { return running("back"); }));
}

}  // namespace
}  // namespace skiff::controllers::nodelifecycle
