// The DaemonSet controller against a real API server, with nodes created through the API and
// a fake kubelet that marks pods Running and Ready.
#include "controllers/daemonset/daemon_set_controller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "controllers/daemonset/daemon_util.h"
#include "unit/controllers/replicaset/workload_harness.h"

namespace skiff::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using namespace testing_support;
using ::skiff::testing::eventually;

json node(const std::string& name, const json& labels = json::object(),
          const json& taints = json::array()) {
  json n = {{"apiVersion", "v1"},
            {"kind", "Node"},
            {"metadata", {{"name", name}, {"labels", labels}}},
            {"spec", json::object()}};
  if (!taints.empty()) n["spec"]["taints"] = taints;
  return n;
}

json daemon_set(const std::string& name, const std::string& image = "registry.local/agent:1") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "DaemonSet"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}}}}};
}

class DaemonSetControllerTest : public ::testing::Test {
 protected:
  DaemonSetControllerTest() : h_({"daemonset"}) {}

  void SetUp() override { ASSERT_TRUE(h_.ok()); }

  void add_node(const json& n) {
    auto r = h_.client().create(client::resources::kNodes, n);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  json create(const json& ds) {
    auto r = h_.client().create(daemon_sets(), ds);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? **r : json();
  }

  client::ResourceRef daemon_sets() const { return client::resources::kDaemonSets.in(h_.ns()); }
  client::ResourceRef revisions() const {
    return client::resources::kControllerRevisions.in(h_.ns());
  }

  // Live pods by the node their affinity names.
  std::map<std::string, std::vector<json>> pods_by_node(const std::string& app) {
    std::map<std::string, std::vector<json>> out;
    for (json& p : h_.live_pods("app=" + app)) {
      auto node = daemonset::target_node_name(p);
      out[node.value_or("")].push_back(std::move(p));
    }
    return out;
  }

  std::set<std::string> nodes_with_pods(const std::string& app) {
    std::set<std::string> out;
    for (const auto& [n, pods] : pods_by_node(app)) out.insert(n);
    return out;
  }

  bool status_is(const std::string& name, int desired, int current, int ready, int updated,
                 int misscheduled = 0) {
    json ds = h_.get(daemon_sets(), name);
    return num(ds, {"status", "observedGeneration"}) == num(ds, {"metadata", "generation"}) &&
           num(ds, {"status", "desiredNumberScheduled"}) == desired &&
           num(ds, {"status", "currentNumberScheduled"}) == current &&
           num(ds, {"status", "numberReady"}) == ready &&
           num(ds, {"status", "numberAvailable"}) == ready &&
           num(ds, {"status", "updatedNumberScheduled"}) == updated &&
           num(ds, {"status", "numberMisscheduled"}) == misscheduled;
  }

  // Every pod of `app` runs `image` and is ready, one per node of `nodes`.
  bool rolled_out(const std::string& app, const std::string& image, size_t nodes) {
    auto by_node = pods_by_node(app);
    if (by_node.size() != nodes) return false;
    for (const auto& [n, pods] : by_node) {
      if (pods.size() != 1) return false;
      if (pods[0]["spec"]["containers"][0]["image"] != image || !pod_ready(pods[0])) return false;
    }
    return true;
  }

  Status set_image(const std::string& name, const std::string& image) {
    json patch = {{"spec",
                   {{"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}}}}};
    auto r = h_.client().patch(daemon_sets(), name, client::PatchType::kStrategicMerge,
                               patch.dump());
    return r.ok() ? Status::Ok() : r.status();
  }

  WorkloadHarness h_;
};

bool has_toleration(const json& pod, const std::string& key, const std::string& effect) {
  for (const json& t : pod["spec"].value("tolerations", json::array())) {
    if (t.value("key", "") == key && t.value("effect", "") == effect &&
        t.value("operator", "") == "Exists" && !t.contains("tolerationSeconds")) {
      return true;
    }
  }
  return false;
}

// Ready pods in the state the recorder has seen so far.
int recorded_ready(const PodRecorder& recorder) {
  int ready = 0;
  PodHistory::replay(recorder.events(), 0,
                     [&](const PodHistory::Point& p, const std::map<std::string, json>&) {
                       ready = p.ready;
                     });
  return ready;
}

TEST_F(DaemonSetControllerTest, RunsOnePodPerNodeWithNodeAffinityAndDaemonTolerations) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  add_node(node("n1"));
  add_node(node("n2"));
  add_node(node("n3"));
  json ds = create(daemon_set("agent"));
  ASSERT_TRUE(eventually([&] {
    return nodes_with_pods("agent") == std::set<std::string>{"n1", "n2", "n3"};
  }));
  ASSERT_TRUE(eventually([&] { return status_is("agent", 3, 3, 3, 3); }))
      << h_.get(daemon_sets(), "agent")["status"].dump();
  for (const auto& [n, pods] : pods_by_node("agent")) {
    ASSERT_EQ(pods.size(), 1u) << n;
    const json& p = pods[0];
    // Left for the scheduler to bind, pinned to the node by affinity.
    EXPECT_EQ(str(p, {"spec", "nodeName"}), "");
    const json& terms = p["spec"]["affinity"]["nodeAffinity"]
                         ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    ASSERT_EQ(terms.size(), 1u);
    EXPECT_EQ(terms[0]["matchFields"][0],
              json({{"key", "metadata.name"}, {"operator", "In"}, {"values", {n}}}));
    EXPECT_EQ(str(p, {"metadata", "generateName"}), "agent-");
    EXPECT_EQ(p["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    EXPECT_EQ(p["metadata"]["ownerReferences"][0]["uid"], ds["metadata"]["uid"]);
    EXPECT_FALSE(str(p, {"metadata", "labels", "controller-revision-hash"}).empty());
    EXPECT_TRUE(has_toleration(p, "node.kubernetes.io/not-ready", "NoExecute"));
    EXPECT_TRUE(has_toleration(p, "node.kubernetes.io/unreachable", "NoExecute"));
    EXPECT_TRUE(has_toleration(p, "node.kubernetes.io/disk-pressure", "NoSchedule"));
    EXPECT_TRUE(has_toleration(p, "node.kubernetes.io/memory-pressure", "NoSchedule"));
    EXPECT_TRUE(has_toleration(p, "node.kubernetes.io/pid-pressure", "NoSchedule"));
    EXPECT_TRUE(has_toleration(p, "node.kubernetes.io/unschedulable", "NoSchedule"));
    EXPECT_FALSE(has_toleration(p, "node.kubernetes.io/network-unavailable", "NoSchedule"));
  }
  EXPECT_TRUE(eventually([&] { return h_.events("agent", "SuccessfulCreate").size() == 3; }));
  // One revision, whose hash the pods carry.
  auto revs = h_.list(revisions());
  ASSERT_EQ(revs.size(), 1u);
  EXPECT_EQ(revs[0]["revision"], 1);
  std::string hash = str(revs[0], {"metadata", "labels", "controller-revision-hash"});
  EXPECT_EQ(str(revs[0], {"metadata", "name"}), "agent-" + hash);
  EXPECT_EQ(revs[0]["data"]["spec"]["template"]["$patch"], "replace");
  for (const json& p : h_.live_pods("app=agent")) {
    EXPECT_EQ(str(p, {"metadata", "labels", "controller-revision-hash"}), hash);
  }
}

TEST_F(DaemonSetControllerTest, NodeSelectorAffinityAndTaintsChooseTheNodes) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  add_node(node("plain", {{"disk", "hdd"}}));
  add_node(node("ssd", {{"disk", "ssd"}, {"zone", "a"}}));
  add_node(node("ssd-b", {{"disk", "ssd"}, {"zone", "b"}}));
  add_node(node("ssd-tainted", {{"disk", "ssd"}, {"zone", "a"}},
                {{{"key", "dedicated"}, {"value", "db"}, {"effect", "NoSchedule"}}}));
  // Cordoned: the automatic toleration of unschedulable lets daemon pods in.
  add_node(node("ssd-cordoned", {{"disk", "ssd"}, {"zone", "a"}},
                {{{"key", "node.kubernetes.io/unschedulable"}, {"effect", "NoSchedule"}}}));
  json ds = daemon_set("agent");
  ds["spec"]["template"]["spec"]["nodeSelector"] = {{"disk", "ssd"}};
  ds["spec"]["template"]["spec"]["affinity"] = {
      {"nodeAffinity",
       {{"requiredDuringSchedulingIgnoredDuringExecution",
         {{"nodeSelectorTerms",
           {{{"matchExpressions",
              {{{"key", "zone"}, {"operator", "NotIn"}, {"values", {"b"}}}}}}}}}}}}};
  create(ds);
  ASSERT_TRUE(eventually([&] {
    return nodes_with_pods("agent") == std::set<std::string>{"ssd", "ssd-cordoned"};
  })) << ::testing::PrintToString(nodes_with_pods("agent"));
  EXPECT_TRUE(eventually([&] { return status_is("agent", 2, 2, 2, 2); }));

  // Tolerating the taint brings the tainted node in.
  json patch = {
      {"spec",
       {{"template",
         {{"spec",
           {{"tolerations",
             {{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "db"}, {"effect", "NoSchedule"}}}}}}}}}}};
  ASSERT_TRUE(h_.merge_patch(daemon_sets(), "agent", patch).ok());
  ASSERT_TRUE(eventually([&] {
    return nodes_with_pods("agent") == std::set<std::string>{"ssd", "ssd-cordoned", "ssd-tainted"};
  })) << ::testing::PrintToString(nodes_with_pods("agent"));
  EXPECT_TRUE(eventually([&] { return status_is("agent", 3, 3, 3, 3); }))
      << h_.get(daemon_sets(), "agent")["status"].dump();
}

TEST_F(DaemonSetControllerTest, FollowsNodesAddedRelabelledAndTaintedNoExecute) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  add_node(node("n1", {{"role", "edge"}}));
  json ds = daemon_set("agent");
  ds["spec"]["template"]["spec"]["nodeSelector"] = {{"role", "edge"}};
  create(ds);
  ASSERT_TRUE(eventually([&] { return nodes_with_pods("agent") == std::set<std::string>{"n1"}; }));
  add_node(node("n2", {{"role", "edge"}}));
  ASSERT_TRUE(eventually([&] {
    return nodes_with_pods("agent") == std::set<std::string>{"n1", "n2"};
  }));
  // A node that stops matching loses its pod.
  ASSERT_TRUE(h_.merge_patch(client::resources::kNodes, "n1",
                             {{"metadata", {{"labels", {{"role", "core"}}}}}})
                  .ok());
  ASSERT_TRUE(eventually([&] { return nodes_with_pods("agent") == std::set<std::string>{"n2"}; }));
  // A NoSchedule taint the pod does not tolerate keeps the running pod; NoExecute evicts it.
  ASSERT_TRUE(h_.merge_patch(client::resources::kNodes, "n2",
                             {{"spec", {{"taints", {{{"key", "maint"}, {"effect", "NoSchedule"}}}}}}})
                  .ok());
  ASSERT_TRUE(eventually([&] { return status_is("agent", 0, 0, 0, 0, 1); }))
      << h_.get(daemon_sets(), "agent")["status"].dump();
  EXPECT_EQ(nodes_with_pods("agent"), std::set<std::string>{"n2"});
  ASSERT_TRUE(h_.merge_patch(client::resources::kNodes, "n2",
                             {{"spec", {{"taints", {{{"key", "maint"}, {"effect", "NoExecute"}}}}}}})
                  .ok());
  ASSERT_TRUE(eventually([&] { return nodes_with_pods("agent").empty(); }));
  EXPECT_TRUE(eventually([&] { return status_is("agent", 0, 0, 0, 0, 0); }));
}

TEST_F(DaemonSetControllerTest, RollingUpdateKeepsWithinMaxUnavailable) {
  PodRecorder recorder(h_.client(), h_.ns());
  FakeKubelet kubelet(h_.client(), h_.ns());
  for (const char* n : {"n1", "n2", "n3", "n4", "n5"}) add_node(node(n));
  json ds = daemon_set("agent");
  ds["spec"]["updateStrategy"] = {{"type", "RollingUpdate"},
                                  {"rollingUpdate", {{"maxUnavailable", 2}}}};
  create(ds);
  ASSERT_TRUE(eventually([&] { return rolled_out("agent", "registry.local/agent:1", 5); }));
  ASSERT_TRUE(eventually([&] { return status_is("agent", 5, 5, 5, 5); }));
  ASSERT_TRUE(eventually([&] { return recorded_ready(recorder) == 5; }));
  size_t from = recorder.size();
  ASSERT_TRUE(set_image("agent", "registry.local/agent:2").ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("agent", "registry.local/agent:2", 5); }));
  ASSERT_TRUE(eventually([&] { return status_is("agent", 5, 5, 5, 5); }))
      << h_.get(daemon_sets(), "agent")["status"].dump();
  ASSERT_FALSE(recorder.closed());
  // Never fewer than 5 - 2 ready pods, never more than one pod per node.
  int min_ready = 5;
  int max_alive = 0;
  PodHistory::replay(recorder.events(), from,
                     [&](const PodHistory::Point& p, const std::map<std::string, json>&) {
                       min_ready = std::min(min_ready, p.ready);
                       max_alive = std::max(max_alive, p.alive);
                     });
  EXPECT_GE(min_ready, 3);
  EXPECT_LE(max_alive, 5);
  // Two revisions; the pods carry the second.
  auto revs = h_.list(revisions());
  ASSERT_EQ(revs.size(), 2u);
  std::map<int64_t, std::string> hash_by_revision;
  for (const json& r : revs) {
    hash_by_revision[num(r, {"revision"})] = str(r, {"metadata", "labels", "controller-revision-hash"});
  }
  ASSERT_EQ(hash_by_revision.size(), 2u);
  for (const json& p : h_.live_pods("app=agent")) {
    EXPECT_EQ(str(p, {"metadata", "labels", "controller-revision-hash"}), hash_by_revision[2]);
  }
}

TEST_F(DaemonSetControllerTest, RollingUpdateWithMaxSurgeStartsNewPodsFirst) {
  PodRecorder recorder(h_.client(), h_.ns());
  FakeKubelet kubelet(h_.client(), h_.ns());
  for (const char* n : {"n1", "n2", "n3"}) add_node(node(n));
  json ds = daemon_set("agent");
  ds["spec"]["updateStrategy"] = {{"type", "RollingUpdate"},
                                  {"rollingUpdate", {{"maxUnavailable", 0}, {"maxSurge", 1}}}};
  create(ds);
  ASSERT_TRUE(eventually([&] { return rolled_out("agent", "registry.local/agent:1", 3); }));
  ASSERT_TRUE(eventually([&] { return status_is("agent", 3, 3, 3, 3); }));
  ASSERT_TRUE(eventually([&] { return recorded_ready(recorder) == 3; }));
  size_t from = recorder.size();
  ASSERT_TRUE(set_image("agent", "registry.local/agent:2").ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("agent", "registry.local/agent:2", 3); }));
  ASSERT_TRUE(eventually([&] { return status_is("agent", 3, 3, 3, 3); }));
  int min_ready = 3;
  int max_alive = 0;
  PodHistory::replay(recorder.events(), from,
                     [&](const PodHistory::Point& p, const std::map<std::string, json>&) {
                       min_ready = std::min(min_ready, p.ready);
                       max_alive = std::max(max_alive, p.alive);
                     });
  // Nothing becomes unavailable, and at most one node runs two pods at a time.
  EXPECT_EQ(min_ready, 3);
  EXPECT_EQ(max_alive, 4);
}

TEST_F(DaemonSetControllerTest, OnDeleteReplacesOnlyPodsTheUserDeletes) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  for (const char* n : {"n1", "n2"}) add_node(node(n));
  json ds = daemon_set("agent");
  ds["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
  create(ds);
  ASSERT_TRUE(eventually([&] { return rolled_out("agent", "registry.local/agent:1", 2); }));
  ASSERT_TRUE(set_image("agent", "registry.local/agent:2").ok());
  ASSERT_TRUE(eventually([&] { return status_is("agent", 2, 2, 2, 0); }))
      << h_.get(daemon_sets(), "agent")["status"].dump();
  EXPECT_TRUE(rolled_out("agent", "registry.local/agent:1", 2));
  std::string victim = str(pods_by_node("agent")["n1"][0], {"metadata", "name"});
  ASSERT_TRUE(h_.client().remove(h_.pods(), victim).ok());
  ASSERT_TRUE(eventually([&] {
    auto by_node = pods_by_node("agent");
    return by_node["n1"].size() == 1 &&
           by_node["n1"][0]["spec"]["containers"][0]["image"] == "registry.local/agent:2" &&
           by_node["n2"].size() == 1 &&
           by_node["n2"][0]["spec"]["containers"][0]["image"] == "registry.local/agent:1";
  }));
  EXPECT_TRUE(eventually([&] { return status_is("agent", 2, 2, 2, 1); }));
}

TEST_F(DaemonSetControllerTest, RollbackToAnEarlierRevisionReusesIt) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  for (const char* n : {"n1", "n2"}) add_node(node(n));
  create(daemon_set("agent"));
  ASSERT_TRUE(eventually([&] { return rolled_out("agent", "registry.local/agent:1", 2); }));
  ASSERT_TRUE(set_image("agent", "registry.local/agent:2").ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("agent", "registry.local/agent:2", 2); }));
  ASSERT_TRUE(eventually([&] { return h_.list(revisions()).size() == 2; }));
  json first;
  for (const json& r : h_.list(revisions())) {
    if (num(r, {"revision"}) == 1) first = r;
  }
  ASSERT_TRUE(first.is_object());
  // What `kubectl rollout undo` sends: the revision's data as a strategic merge patch.
  auto undo = h_.client().patch(daemon_sets(), "agent", client::PatchType::kStrategicMerge,
                                first["data"].dump());
  ASSERT_TRUE(undo.ok()) << undo.status().to_string();
  ASSERT_TRUE(eventually([&] { return rolled_out("agent", "registry.local/agent:1", 2); }));
  // No third revision: the first one is renumbered as the newest.
  ASSERT_TRUE(eventually([&] {
    json r = h_.get(revisions(), str(first, {"metadata", "name"}));
    return num(r, {"revision"}) == 3 && h_.list(revisions()).size() == 2;
  }));
  EXPECT_TRUE(eventually([&] { return status_is("agent", 2, 2, 2, 2); }));
}

TEST_F(DaemonSetControllerTest, DaemonPodTemplateHelpers) {
  json spec = {{"hostNetwork", true},
               {"tolerations",
                {{{"key", "node.kubernetes.io/not-ready"},
                  {"operator", "Exists"},
                  {"effect", "NoExecute"},
                  {"tolerationSeconds", 300}}}}};
  daemonset::add_daemon_pod_tolerations(spec);
  // The time-limited toleration is replaced, the host network one added.
  EXPECT_EQ(spec["tolerations"].size(), 7u);
  EXPECT_EQ(spec["tolerations"][0],
            json({{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}, {"effect", "NoExecute"}}));
  json pod = {{"spec", {{"affinity", {{"nodeAffinity", {{"preferredDuringSchedulingIgnoredDuringExecution", json::array({json{{"weight", 1}}})}}}}}}}};
  daemonset::set_node_name_affinity(pod["spec"], "n7");
  EXPECT_EQ(daemonset::target_node_name(pod), "n7");
  EXPECT_EQ(pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"].size(), 1u);
  pod["spec"]["nodeName"] = "bound";
  EXPECT_EQ(daemonset::target_node_name(pod), "bound");
  EXPECT_FALSE(daemonset::target_node_name(json{{"spec", json::object()}}).has_value());
  json ds = daemon_set("x");
  ds["spec"]["updateStrategy"] = {{"type", "RollingUpdate"},
                                  {"rollingUpdate", {{"maxUnavailable", "30%"}, {"maxSurge", 0}}}};
  EXPECT_EQ(*daemonset::unavailable_count(ds, 10), 3);
  EXPECT_EQ(*daemonset::unavailable_count(ds, 11), 4);  // rounded up
  EXPECT_FALSE(daemonset::allows_surge(ds));
  ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "x";
  EXPECT_FALSE(daemonset::unavailable_count(ds, 10).ok());
}

}  // namespace
}  // namespace skiff::controllers
