#include "scheduler/cluster.h"

#include <gtest/gtest.h>

#include <set>

#include "scheduler/convert.h"
#include "scheduler_test_util.h"

namespace skiff::scheduler {
namespace {

using nlohmann::json;
using testing::NodeBuilder;
using testing::PodBuilder;
using testing::TestCluster;

TEST(InternerTest, InternsOnceAndEmptyIsZero) {
  Interner in;
  EXPECT_EQ(in.intern(""), Interner::kEmpty);
  uint32_t a = in.intern("app");
  EXPECT_EQ(in.intern("app"), a);
  EXPECT_NE(in.intern("web"), a);
  EXPECT_EQ(in.str(a), "app");
  EXPECT_EQ(in.find("app"), a);
  EXPECT_FALSE(in.find("never").has_value());
}

TEST(ConvertTest, NodeAllocatableIsReadInMilliCpuAndBytes) {
  Interner in;
  auto n = parse_node(
      NodeBuilder("n1").cpu("3500m").memory("2Gi").pods(7).alloc("nvidia.com/gpu", "2"), in);
  EXPECT_EQ(n->name, "n1");
  EXPECT_EQ(n->allocatable.milli_cpu, 3500);
  EXPECT_EQ(n->allocatable.memory, 2LL << 30);
  EXPECT_EQ(n->allowed_pods, 7);
  EXPECT_EQ(n->allocatable.scalar_value(in.intern("nvidia.com/gpu")), 2);
  EXPECT_TRUE(n->ready);
  EXPECT_TRUE(n->taints.empty());
}

TEST(ConvertTest, NodeThatIsNotReadyGetsTheNotReadyTaint) {
  Interner in;
  auto not_ready = parse_node(NodeBuilder("n").ready("False"), in);
  ASSERT_EQ(not_ready->taints.size(), 1u);
  EXPECT_EQ(in.str(not_ready->taints[0].key), kTaintNotReady);
  EXPECT_EQ(not_ready->taints[0].effect, TaintEffect::kNoSchedule);

  auto unknown = parse_node(NodeBuilder("n").ready("Unknown"), in);
  ASSERT_EQ(unknown->taints.size(), 1u);
  EXPECT_EQ(in.str(unknown->taints[0].key), kTaintUnreachable);

  auto fresh = parse_node(NodeBuilder("n").no_conditions(), in);
  ASSERT_EQ(fresh->taints.size(), 1u);
  EXPECT_EQ(in.str(fresh->taints[0].key), kTaintNotReady);

  // Not doubled when the node lifecycle controller already added it.
  auto tainted =
      parse_node(NodeBuilder("n").ready("False").taint(kTaintNotReady, "", "NoSchedule"), in);
  EXPECT_EQ(tainted->taints.size(), 1u);
}

TEST(ConvertTest, PodRequestsSumContainersAndTakeTheLargestInitContainer) {
  Interner in;
  PodBuilder b("p");
  b.spec()["containers"] = json::array(
      {{{"name", "a"}, {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}},
       {{"name", "b"}, {"resources", {{"requests", {{"cpu", "200m"}}}}}}});
  b.spec()["initContainers"] =
      json::array({{{"name", "init"}, {"resources", {{"requests", {{"cpu", "1"}}}}}}});
  b.spec()["overhead"] = {{"cpu", "10m"}, {"memory", "1Mi"}};
  auto p = parse_pod(b, in);
  EXPECT_TRUE(p->invalid.empty());
  EXPECT_EQ(p->requests.milli_cpu, 1010);  // max(300, 1000) + 10
  EXPECT_EQ(p->requests.memory, (64 << 20) + (1 << 20));
  // Container b has no memory request: 200Mi counts for scoring.
  EXPECT_EQ(p->non_zero_milli_cpu, 1010);
  EXPECT_EQ(p->non_zero_memory, (64 << 20) + (200 << 20) + (1 << 20));
}

TEST(ConvertTest, SidecarsAddUpAndRunNextToLaterInitContainers) {
  Interner in;
  PodBuilder b("p");
  b.cpu("100m");
  b.spec()["initContainers"] =
      json::array({{{"name", "sidecar"},
                    {"restartPolicy", "Always"},
                    {"resources", {{"requests", {{"cpu", "200m"}}}}}},
                   {{"name", "init"}, {"resources", {{"requests", {{"cpu", "250m"}}}}}}});
  auto p = parse_pod(b, in);
  // containers + sidecar = 300m; the init container runs with the sidecar: 450m.
  EXPECT_EQ(p->requests.milli_cpu, 450);
}

TEST(ConvertTest, LimitsStandInForMissingRequests) {
  Interner in;
  PodBuilder b("p");
  b.spec()["containers"][0]["resources"] = {{"limits", {{"cpu", "2"}, {"memory", "1Gi"}}},
                                            {"requests", {{"cpu", "1"}}}};
  auto p = parse_pod(b, in);
  EXPECT_EQ(p->requests.milli_cpu, 1000);
  EXPECT_EQ(p->requests.memory, 1LL << 30);
}

TEST(ConvertTest, MalformedQuantityMarksThePodInvalid) {
  Interner in;
  auto p = parse_pod(PodBuilder("p").cpu("lots"), in);
  EXPECT_FALSE(p->invalid.empty());
}

TEST(ConvertTest, PodFieldsAreRead) {
  Interner in;
  json obj = PodBuilder("p", "ns1").label("app", "web").priority(7).node("n1").host_port(80);
  obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  obj["status"]["conditions"] = json::array({{{"type", "PodScheduled"},
                                              {"status", "False"},
                                              {"reason", "Unschedulable"},
                                              {"message", "m"}}});
  auto p = parse_pod(obj, in);
  EXPECT_EQ(p->key(), "ns1/p");
  EXPECT_EQ(p->priority, 7);
  EXPECT_EQ(p->node_name, "n1");
  EXPECT_TRUE(p->terminating);
  EXPECT_EQ(p->labels.get(in.intern("app")), in.intern("web"));
  ASSERT_EQ(p->host_ports.size(), 1u);
  EXPECT_EQ(p->host_ports[0].port, 80);
  EXPECT_EQ(p->scheduled_reason, "Unschedulable");
  EXPECT_EQ(p->scheduled_message, "m");
}

TEST(ClusterTest, AssumedPodCountsOnItsNodeUntilForgotten) {
  TestCluster t;
  t.add_node(NodeBuilder("n1"));
  auto p = t.pod(PodBuilder("p").cpu("1").memory("1Gi").host_port(8080));
  t.cluster.assume(p, "n1");
  const NodeInfo* n = t.cluster.find_node("n1");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->requested.milli_cpu, 1000);
  EXPECT_EQ(n->num_pods, 1);
  EXPECT_EQ(n->used_ports.size(), 1u);
  EXPECT_TRUE(t.cluster.is_assumed(p->uid));

  uint32_t freed = t.cluster.forget(p->uid);
  EXPECT_TRUE(freed & plugin::kNodeResourcesFit);
  EXPECT_TRUE(freed & plugin::kNodePorts);
  EXPECT_EQ(n->requested.milli_cpu, 0);
  EXPECT_EQ(n->num_pods, 0);
  EXPECT_TRUE(n->used_ports.empty());
}

TEST(ClusterTest, ConfirmedPodIsNotCountedTwiceAndCannotBeForgotten) {
  TestCluster t;
  t.add_node(NodeBuilder("n1"));
  auto p = t.pod(PodBuilder("p").cpu("1"));
  t.cluster.assume(p, "n1");
  t.add_pod(PodBuilder("p").cpu("1").node("n1"));
  const NodeInfo* n = t.cluster.find_node("n1");
  EXPECT_EQ(n->requested.milli_cpu, 1000);
  EXPECT_EQ(n->num_pods, 1);
  EXPECT_FALSE(t.cluster.is_assumed(p->uid));
  EXPECT_EQ(t.cluster.forget(p->uid), 0u);
  EXPECT_EQ(n->requested.milli_cpu, 1000);
}

TEST(ClusterTest, BindingToAnotherNodeMovesTheUsage) {
  TestCluster t;
  t.add_node(NodeBuilder("n1"));
  t.add_node(NodeBuilder("n2"));
  t.cluster.assume(t.pod(PodBuilder("p").cpu("1")), "n1");
  uint32_t changed = t.add_pod(PodBuilder("p").cpu("1").node("n2"));
  EXPECT_TRUE(changed & plugin::kNodeResourcesFit);
  EXPECT_EQ(t.cluster.find_node("n1")->requested.milli_cpu, 0);
  EXPECT_EQ(t.cluster.find_node("n2")->requested.milli_cpu, 1000);
}

TEST(ClusterTest, DeletedNodeKeepsItsPodsUntilTheyGo) {
  TestCluster t;
  t.add_node(NodeBuilder("n1"));
  t.add_pod(PodBuilder("p").cpu("1").node("n1"));
  t.cluster.remove_node("n1");
  EXPECT_EQ(t.cluster.num_nodes(), 0u);
  ASSERT_NE(t.cluster.find_node("n1"), nullptr);
  // Re-added: its usage is still known.
  t.add_node(NodeBuilder("n1"));
  EXPECT_EQ(t.cluster.find_node("n1")->requested.milli_cpu, 1000);
  t.cluster.remove_node("n1");
  t.cluster.remove_pod("uid-default-p");
  EXPECT_EQ(t.cluster.find_node("n1"), nullptr);
  EXPECT_EQ(t.cluster.num_pods(), 0u);
}

TEST(ClusterTest, PodOnUnknownNodeIsAccountedWhenTheNodeArrives) {
  TestCluster t;
  t.add_pod(PodBuilder("p").cpu("1").node("late"));
  EXPECT_EQ(t.cluster.num_nodes(), 0u);
  t.add_node(NodeBuilder("late"));
  EXPECT_EQ(t.cluster.num_nodes(), 1u);
  EXPECT_EQ(t.cluster.node_at(0).requested.milli_cpu, 1000);
}

TEST(ClusterTest, NodeUpdateReportsOnlyWhatMatters) {
  TestCluster t;
  EXPECT_EQ(t.add_node(NodeBuilder("n1")), plugin::kAll);
  EXPECT_EQ(t.add_node(NodeBuilder("n1")), 0u);
  EXPECT_EQ(t.add_node(NodeBuilder("n1").cpu("8")), plugin::kNodeResourcesFit);
  EXPECT_EQ(t.add_node(NodeBuilder("n1").cpu("8").label("zone", "a")),
            plugin::kNodeAffinity | plugin::kInterPodAffinity);
  EXPECT_EQ(t.add_node(NodeBuilder("n1").cpu("8").label("zone", "a").ready("False")),
            plugin::kTaintToleration);
  // Becoming ready removes the taint.
  EXPECT_EQ(t.add_node(NodeBuilder("n1").cpu("8").label("zone", "a")), plugin::kTaintToleration);
  EXPECT_EQ(t.add_node(NodeBuilder("n1").cpu("8").label("zone", "a").unschedulable()), 0u);
  EXPECT_EQ(t.add_node(NodeBuilder("n1").cpu("8").label("zone", "a")), plugin::kNodeUnschedulable);
}

TEST(ClusterTest, NodeRemovalKeepsTheOthersReachable) {
  TestCluster t;
  for (int i = 0; i < 5; ++i) t.add_node(NodeBuilder("n" + std::to_string(i)));
  t.cluster.remove_node("n1");
  t.cluster.remove_node("n4");
  std::set<std::string> names;
  for (size_t i = 0; i < t.cluster.num_nodes(); ++i) names.insert(t.cluster.node_at(i).name);
  EXPECT_EQ(names, (std::set<std::string>{"n0", "n2", "n3"}));
}

TEST(ClusterTest, PodsWithAffinityAreIndexed) {
  TestCluster t;
  t.add_node(NodeBuilder("n1"));
  t.add_pod(PodBuilder("plain").node("n1"));
  t.add_pod(PodBuilder("anti").node("n1").affinity(
      "podAntiAffinity",
      {{"requiredDuringSchedulingIgnoredDuringExecution", {testing::pod_term("app", "x")}}}));
  EXPECT_EQ(t.cluster.pods_with_affinity().size(), 1u);
  EXPECT_EQ(t.cluster.pods_with_required_anti_affinity().size(), 1u);
  t.cluster.remove_pod("uid-default-anti");
  EXPECT_TRUE(t.cluster.pods_with_affinity().empty());
  EXPECT_TRUE(t.cluster.pods_with_required_anti_affinity().empty());
}

}  // namespace
}  // namespace skiff::scheduler
