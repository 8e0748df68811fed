// The Scheduler against a real API server: nodes and pods written through the client, the
// outcome read back through the API.
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "scheduler_test_util.h"
#include "testing/test_server.h"

namespace skiff::scheduler {
namespace {

using nlohmann::json;
using skiff::testing::eventually;
using testing::NodeBuilder;
using testing::PodBuilder;
namespace res = client::resources;

struct RecordedEvent {
  std::string object;
  std::string type;
  std::string reason;
  std::string message;
};

class SchedulerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server.ok());
    api = server.client("skiff-scheduler");
    informers = std::make_unique<client::InformerFactory>(*api);
  }

  void start(SchedulerOptions o = {}) {
    o.initial_backoff = std::chrono::milliseconds(20);
    o.max_backoff = std::chrono::milliseconds(100);
    o.seed = 7;
    o.events = [this](const json& obj, const std::string& type, const std::string& reason,
                      const std::string& message) {
      std::lock_guard lock(events_mu);
      events.push_back(
          {obj.value("namespace", "") + "/" + obj.value("name", ""), type, reason, message});
    };
    scheduler = std::make_unique<Scheduler>(*api, *informers, std::move(o));
    scheduler->start();
  }

  // Creates a node, then writes its status (allocatable, Ready) through the status
  // subresource, as a node agent does.
  void create_node(const NodeBuilder& b) {
    json obj = b.json_obj();
    json status = obj["status"];
    obj.erase("status");
    auto created = api->create(res::kNodes, obj);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    json with_status = **created;
    with_status["status"] = status;
    auto updated = api->update(res::kNodes, with_status, "status");
    ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  }

  void update_node(const NodeBuilder& b) {
    auto cur = api->get(res::kNodes, b.json_obj()["metadata"]["name"]);
    ASSERT_TRUE(cur.ok());
    json obj = **cur;
    obj["spec"] = b.json_obj()["spec"];
    obj["metadata"]["labels"] = b.json_obj()["metadata"]["labels"];
    auto r = api->update(res::kNodes, obj);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  void create_pod(const PodBuilder& b) {
    json obj = b.json_obj();
    obj["metadata"].erase("uid");
    obj.erase("status");
    std::string ns = obj["metadata"]["namespace"];
    auto r = api->create(res::kPods.in(ns), obj);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  json get_pod(const std::string& name, const std::string& ns = "default") {
    auto r = api->get(res::kPods.in(ns), name);
    return r.ok() ? **r : json();
  }

  std::string node_of(const std::string& name) {
    json p = get_pod(name);
    if (!p.is_object()) return "";
    return p["spec"].value("nodeName", "");
  }

  // Waits until the pod is bound; returns its node ("" on timeout).
  std::string wait_bound(const std::string& name) {
    std::string node;
    eventually([&] {
      node = node_of(name);
      return !node.empty();
    });
    return node;
  }

  // The pod's PodScheduled condition, or {} if it has none.
  json scheduled_condition(const std::string& name) {
    json p = get_pod(name);
    if (!p.is_object() || !p["status"].is_object()) return json::object();
    for (const json& c : p["status"].value("conditions", json::array())) {
      if (c.value("type", "") == "PodScheduled") return c;
    }
    return json::object();
  }

  bool has_event(const std::string& object, const std::string& reason, const std::string& message) {
    std::lock_guard lock(events_mu);
    for (const auto& e : events) {
      if (e.object == object && e.reason == reason && e.message == message) return true;
    }
    return false;
  }

  // Declared so that the scheduler, whose threads record events, goes first.
  std::mutex events_mu;
  std::vector<RecordedEvent> events;
  skiff::testing::TestServer server;
  std::unique_ptr<client::Client> api;
  std::unique_ptr<client::InformerFactory> informers;
  std::unique_ptr<Scheduler> scheduler;
};

TEST_F(SchedulerIntegrationTest, PodsAreBoundToNodesThatFit) {
  create_node(NodeBuilder("small").cpu("1"));
  create_node(NodeBuilder("big").cpu("8"));
  create_pod(PodBuilder("needs-two").cpu("2"));
  start();
  EXPECT_EQ(wait_bound("needs-two"), "big");
  json cond = scheduled_condition("needs-two");
  EXPECT_EQ(cond.value("status", ""), "True");
  EXPECT_TRUE(eventually([&] {
    return has_event("default/needs-two", "Scheduled",
                     "Successfully assigned default/needs-two to big");
  }));
  EXPECT_TRUE(eventually([&] { return scheduler->stats().scheduled == 1; }));
}

TEST_F(SchedulerIntegrationTest, CordonedAndNotReadyNodesAreSkipped) {
  create_node(NodeBuilder("cordoned").unschedulable());
  create_node(NodeBuilder("down").ready("False"));
  create_node(NodeBuilder("up"));
  start();
  for (int i = 0; i < 6; ++i) create_pod(PodBuilder("p" + std::to_string(i)));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(wait_bound("p" + std::to_string(i)), "up");
}

TEST_F(SchedulerIntegrationTest, UnschedulablePodIsReportedThenPlacedWhenANodeFits) {
  create_node(NodeBuilder("small").cpu("1"));
  start();
  create_pod(PodBuilder("big").cpu("2"));
  const std::string expected =
      "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No "
      "preemption victims found for incoming pod..";
  ASSERT_TRUE(eventually([&] {
    json c = scheduled_condition("big");
    return c.value("status", "") == "False" && c.value("reason", "") == "Unschedulable" &&
           c.value("message", "") == expected;
  })) << scheduled_condition("big").dump();
  EXPECT_TRUE(eventually([&] { return has_event("default/big", "FailedScheduling", expected); }));
  EXPECT_EQ(node_of("big"), "");
  EXPECT_TRUE(eventually([&] { return scheduler->stats().unschedulable_pods == 1; }));

  create_node(NodeBuilder("large").cpu("4"));
  EXPECT_EQ(wait_bound("big"), "large");
  EXPECT_EQ(scheduled_condition("big").value("status", ""), "True");
}

TEST_F(SchedulerIntegrationTest, UncordoningANodeLetsWaitingPodsIn) {
  create_node(NodeBuilder("only").unschedulable());
  start();
  create_pod(PodBuilder("p"));
  ASSERT_TRUE(eventually([&] {
    return scheduled_condition("p").value("message", "") ==
           "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are "
           "available: 1 Preemption is not helpful for scheduling..";
  }));
  update_node(NodeBuilder("only"));
  EXPECT_EQ(wait_bound("p"), "only");
}

TEST_F(SchedulerIntegrationTest, NodeBecomingReadyLetsWaitingPodsIn) {
  create_node(NodeBuilder("n").ready("False"));
  start();
  create_pod(PodBuilder("p"));
  ASSERT_TRUE(eventually([&] { return scheduled_condition("p").value("status", "") == "False"; }));
  auto cur = api->get(res::kNodes, "n");
  ASSERT_TRUE(cur.ok());
  json obj = **cur;
  obj["status"]["conditions"] = json::array({{{"type", "Ready"}, {"status", "True"}}});
  ASSERT_TRUE(api->update(res::kNodes, obj, "status").ok());
  EXPECT_EQ(wait_bound("p"), "n");
}

TEST_F(SchedulerIntegrationTest, DeletingAPodMakesRoom) {
  create_node(NodeBuilder("n").cpu("1"));
  create_pod(PodBuilder("first").cpu("1"));
  start();
  ASSERT_EQ(wait_bound("first"), "n");
  create_pod(PodBuilder("second").cpu("1"));
  ASSERT_TRUE(
      eventually([&] { return scheduled_condition("second").value("status", "") == "False"; }));
  client::DeleteOptions now;
  now.grace_period_seconds = 0;
  ASSERT_TRUE(api->remove(res::kPods.in("default"), "first", now).ok());
  EXPECT_EQ(wait_bound("second"), "n");
}

TEST_F(SchedulerIntegrationTest, BoundPodsCountAgainstCapacity) {
  create_node(NodeBuilder("a").cpu("2"));
  create_node(NodeBuilder("b").cpu("2"));
  create_pod(PodBuilder("hog").cpu("2").node("a"));
  start();
  for (int i = 0; i < 2; ++i) create_pod(PodBuilder("p" + std::to_string(i)).cpu("1"));
  EXPECT_EQ(wait_bound("p0"), "b");
  EXPECT_EQ(wait_bound("p1"), "b");
}

TEST_F(SchedulerIntegrationTest, BinPackingProfileFillsNodesInTurn) {
  for (int i = 0; i < 3; ++i) create_node(NodeBuilder("n" + std::to_string(i)).cpu("4"));
  start();
  for (int i = 0; i < 8; ++i) {
    create_pod(PodBuilder("p" + std::to_string(i)).cpu("1").scheduler("skiff-binpack"));
  }
  std::map<std::string, int> per_node;
  for (int i = 0; i < 8; ++i) ++per_node[wait_bound("p" + std::to_string(i))];
  EXPECT_EQ(per_node.size(), 2u);
  for (const auto& [node, n] : per_node) EXPECT_EQ(n, 4) << node;
}

TEST_F(SchedulerIntegrationTest, DefaultProfileStrategyIsAnOption) {
  for (int i = 0; i < 3; ++i) create_node(NodeBuilder("n" + std::to_string(i)).cpu("4"));
  SchedulerOptions o;
  o.default_strategy = ScoringStrategy::kMostAllocated;
  start(std::move(o));
  for (int i = 0; i < 4; ++i) create_pod(PodBuilder("p" + std::to_string(i)).cpu("1"));
  std::set<std::string> nodes;
  for (int i = 0; i < 4; ++i) nodes.insert(wait_bound("p" + std::to_string(i)));
  EXPECT_EQ(nodes.size(), 1u);
}

TEST_F(SchedulerIntegrationTest, PodsOfOtherSchedulersAreLeftAlone) {
  create_node(NodeBuilder("n"));
  start();
  create_pod(PodBuilder("theirs").scheduler("someone-else"));
  create_pod(PodBuilder("ours"));
  EXPECT_EQ(wait_bound("ours"), "n");
  EXPECT_EQ(node_of("theirs"), "");
  EXPECT_TRUE(scheduled_condition("theirs").empty());
}

TEST_F(SchedulerIntegrationTest, GatedPodsWaitForTheirGatesToBeRemoved) {
  create_node(NodeBuilder("n"));
  start();
  PodBuilder gated("gated");
  gated.spec()["schedulingGates"] = json::array({{{"name", "example.com/quota"}}});
  create_pod(gated);
  create_pod(PodBuilder("free"));
  ASSERT_EQ(wait_bound("free"), "n");
  EXPECT_EQ(node_of("gated"), "");
  auto r = api->patch(res::kPods.in("default"), "gated", client::PatchType::kMerge,
                      R"({"spec":{"schedulingGates":null}})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(wait_bound("gated"), "n");
}

TEST_F(SchedulerIntegrationTest, AntiAffinityReplicasLandOnDifferentNodes) {
  for (int i = 0; i < 3; ++i) create_node(NodeBuilder("n" + std::to_string(i)));
  start();
  for (int i = 0; i < 3; ++i) {
    create_pod(
        PodBuilder("web" + std::to_string(i))
            .label("app", "web")
            .affinity("podAntiAffinity", {{"requiredDuringSchedulingIgnoredDuringExecution",
                                           json::array({testing::pod_term("app", "web")})}}));
  }
  std::set<std::string> nodes;
  for (int i = 0; i < 3; ++i) nodes.insert(wait_bound("web" + std::to_string(i)));
  EXPECT_EQ(nodes.size(), 3u);
}

TEST_F(SchedulerIntegrationTest, StartsAfterTheInformersAreAlreadyRunning) {
  create_node(NodeBuilder("small").cpu("1"));
  create_node(NodeBuilder("big").cpu("4"));
  create_pod(PodBuilder("hog").cpu("3").node("big"));
  informers->informer(res::kNodes).start();
  informers->informer(res::kPods).start();
  ASSERT_TRUE(informers->wait_for_sync(std::chrono::seconds(10)));
  start();
  create_pod(PodBuilder("p").cpu("1"));
  // "big" has 1 cpu free as well, and is preferred by nothing but chance; "small" and "big"
  // both fit, a second 1-cpu pod must then go to the other one.
  std::string first = wait_bound("p");
  ASSERT_NE(first, "");
  create_pod(PodBuilder("q").cpu("1"));
  std::string second = wait_bound("q");
  EXPECT_NE(second, "");
  EXPECT_NE(first, second);
}

TEST_F(SchedulerIntegrationTest, ManyPodsAreScheduledWithBindingsInFlight) {
  for (int i = 0; i < 20; ++i) create_node(NodeBuilder("n" + std::to_string(i)).cpu("10"));
  start();
  const int kPods = 200;
  for (int i = 0; i < kPods; ++i) create_pod(PodBuilder("p" + std::to_string(i)).cpu("1"));
  ASSERT_TRUE(eventually([&] { return scheduler->stats().scheduled == kPods; }))
      << scheduler->stats().scheduled;
  std::map<std::string, int> per_node;
  for (int i = 0; i < kPods; ++i) ++per_node[node_of("p" + std::to_string(i))];
  EXPECT_EQ(per_node.size(), 20u);
  for (const auto& [node, n] : per_node) EXPECT_EQ(n, 10) << node;
  SchedulerStats s = scheduler->stats();
  EXPECT_EQ(s.bind_failures, 0u);
  EXPECT_EQ(s.unschedulable, 0u);
  EXPECT_EQ(s.nodes, 20u);
}

}  // namespace
}  // namespace skiff::scheduler
