// The filter plugins, and the message kube-scheduler gives when no node passes them.
#include <gtest/gtest.h>

#include <set>

#include "scheduler/algorithm.h"
#include "scheduler/plugins.h"
#include "scheduler_test_util.h"

namespace skiff::scheduler {
namespace {

using nlohmann::json;
using testing::NodeBuilder;
using testing::pod_term;
using testing::PodBuilder;
using testing::TestCluster;

constexpr char kNotHelpful[] = "Preemption is not helpful for scheduling";
constexpr char kNoVictims[] = "No preemption victims found for incoming pod";

// The nodes that pass every filter for a pod.
std::set<std::string> feasible_nodes(TestCluster& t, const json& pod_obj) {
  auto pod = t.pod(pod_obj);
  InterPodAffinityState ipa = inter_pod_affinity_prefilter(t.cluster, *pod);
  std::set<std::string> out;
  std::vector<FailureReason> reasons;
  for (size_t i = 0; i < t.cluster.num_nodes(); ++i) {
    uint32_t failed = 0;
    const NodeInfo& n = t.cluster.node_at(i);
    if (run_filters(t.cluster, *pod, ipa, n, reasons, &failed) == FilterCode::kSuccess) {
      out.insert(n.name);
    }
  }
  return out;
}

TEST(FitErrorTest, MessageMatchesKubeScheduler) {
  TestCluster t;
  t.add_node(NodeBuilder("small").cpu("1"));
  t.add_node(NodeBuilder("cp1").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"));
  t.add_node(NodeBuilder("cp2").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"));
  Diagnosis d;
  auto r = t.schedule(PodBuilder("p").cpu("2"), Profile(), &d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(d.reason, "Unschedulable");
  EXPECT_EQ(d.message,
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 1 " +
                std::string(kNoVictims) + ", 2 " + kNotHelpful + "..");
  EXPECT_EQ(r.status().message(), d.message);
  EXPECT_EQ(d.plugins, plugin::kNodeResourcesFit | plugin::kTaintToleration);
}

TEST(FitErrorTest, ReasonsAreSortedAsStrings) {
  TestCluster t;
  for (int i = 0; i < 10; ++i) t.add_node(NodeBuilder("a" + std::to_string(i)).cpu("1"));
  for (int i = 0; i < 2; ++i) t.add_node(NodeBuilder("b" + std::to_string(i)).unschedulable());
  // "10 Insufficient cpu" sorts before "2 node(s)..." as Go's sort.Strings does.
  EXPECT_EQ(t.message(PodBuilder("p").cpu("2")),
            "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable. "
            "preemption: 0/12 nodes are available: 10 " +
                std::string(kNoVictims) + ", 2 " + kNotHelpful + "..");
}

TEST(FitErrorTest, PreemptionPolicyNeverIsNotEligible) {
  TestCluster t;
  t.add_node(NodeBuilder("n").cpu("1"));
  EXPECT_EQ(t.message(PodBuilder("p").cpu("2").preemption_never()),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
            "preemptionPolicy=Never..");
}

TEST(FitErrorTest, NoNodesIsASchedulerError) {
  TestCluster t;
  Diagnosis d;
  auto r = t.schedule(PodBuilder("p"), Profile(), &d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(d.reason, "SchedulerError");
  EXPECT_EQ(d.message, "no nodes available to schedule pods");
  EXPECT_EQ(d.plugins, plugin::kNoNodes);
}

TEST(FitErrorTest, UnreadablePodIsASchedulerError) {
  TestCluster t;
  t.add_node(NodeBuilder("n"));
  Diagnosis d;
  auto r = t.schedule(PodBuilder("p").cpu("plenty"), Profile(), &d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(d.reason, "SchedulerError");
}

// ---- NodeResourcesFit -----------------------------------------------------------------------

TEST(NodeResourcesFitTest, EveryInsufficientResourceIsCounted) {
  TestCluster t;
  t.add_node(NodeBuilder("n").cpu("1").memory("1Gi"));
  EXPECT_EQ(t.message(PodBuilder("p").cpu("2").memory("2Gi")),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: 0/1 "
            "nodes are available: 1 " +
                std::string(kNoVictims) + "..");
}

TEST(NodeResourcesFitTest, UsageOfPlacedPodsIsSubtracted) {
  TestCluster t;
  t.add_node(NodeBuilder("n1").cpu("2"));
  t.add_node(NodeBuilder("n2").cpu("2"));
  t.add_pod(PodBuilder("busy").cpu("1500m").node("n1"));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p").cpu("1")), (std::set<std::string>{"n2"}));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p").cpu("500m")), (std::set<std::string>{"n1", "n2"}));
}

TEST(NodeResourcesFitTest, PodCountLimit) {
  TestCluster t;
  t.add_node(NodeBuilder("n").pods(1));
  t.add_pod(PodBuilder("first").node("n"));
  EXPECT_EQ(t.message(PodBuilder("p")),
            "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 " +
                std::string(kNoVictims) + "..");
}

TEST(NodeResourcesFitTest, ExtendedResourcesAndEphemeralStorage) {
  TestCluster t;
  t.add_node(NodeBuilder("gpu").alloc("nvidia.com/gpu", "1").alloc("ephemeral-storage", "10Gi"));
  t.add_node(NodeBuilder("plain").alloc("ephemeral-storage", "1Gi"));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p").request("nvidia.com/gpu", "1")),
            (std::set<std::string>{"gpu"}));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p").request("ephemeral-storage", "5Gi")),
            (std::set<std::string>{"gpu"}));
  EXPECT_EQ(t.message(PodBuilder("p").request("nvidia.com/gpu", "2")),
            "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are "
            "available: 2 " +
                std::string(kNoVictims) + "..");
}

TEST(NodeResourcesFitTest, AssumedPodsFillNodes) {
  TestCluster t;
  t.add_node(NodeBuilder("n1").cpu("1"));
  t.add_node(NodeBuilder("n2").cpu("1"));
  EXPECT_NE(t.schedule_and_assume(PodBuilder("a").cpu("1")), "");
  EXPECT_NE(t.schedule_and_assume(PodBuilder("b").cpu("1")), "");
  EXPECT_EQ(t.schedule_and_assume(PodBuilder("c").cpu("1")), "");
  t.cluster.forget("uid-default-a");
  EXPECT_NE(t.schedule_and_assume(PodBuilder("c").cpu("1")), "");
}

// ---- NodeUnschedulable and readiness --------------------------------------------------------

TEST(NodeUnschedulableTest, CordonedNodeIsSkippedUnlessTolerated) {
  TestCluster t;
  t.add_node(NodeBuilder("cordoned").unschedulable());
  t.add_node(NodeBuilder("open"));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p")), (std::set<std::string>{"open"}));
  EXPECT_EQ(
      feasible_nodes(t, PodBuilder("p").toleration({{"key", "node.kubernetes.io/unschedulable"},
                                                    {"operator", "Exists"},
                                                    {"effect", "NoSchedule"}})),
      (std::set<std::string>{"cordoned", "open"}));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p").toleration({{"operator", "Exists"}})),
            (std::set<std::string>{"cordoned", "open"}));
  t.cluster.remove_node("open");
  EXPECT_EQ(t.message(PodBuilder("p")),
            "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are "
            "available: 1 " +
                std::string(kNotHelpful) + "..");
}

TEST(NodeReadinessTest, NotReadyNodesAreSkipped) {
  TestCluster t;
  t.add_node(NodeBuilder("down").ready("False"));
  t.add_node(NodeBuilder("lost").ready("Unknown"));
  t.add_node(NodeBuilder("up"));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p")), (std::set<std::string>{"up"}));
  t.cluster.remove_node("up");
  EXPECT_EQ(
      t.message(PodBuilder("p")),
      "0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: "
      "}, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. preemption: 0/2 "
      "nodes are available: 2 " +
          std::string(kNotHelpful) + "..");
}

TEST(NodeReadinessTest, DefaultNoExecuteTolerationsDoNotAdmitToNotReadyNodes) {
  TestCluster t;
  t.add_node(NodeBuilder("down").ready("False"));
  PodBuilder p("p");
  p.toleration({{"key", "node.kubernetes.io/not-ready"},
                {"operator", "Exists"},
                {"effect", "NoExecute"},
                {"tolerationSeconds", 300}});
  EXPECT_FALSE(t.schedule(p).ok());
  p.toleration({{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}});
  EXPECT_TRUE(t.schedule(p).ok());
}

// ---- TaintToleration ------------------------------------------------------------------------

TEST(TaintTolerationTest, TolerationOperators) {
  Interner in;
  auto node = parse_node(NodeBuilder("n").taint("dedicated", "gpu", "NoSchedule"), in);
  auto untolerated = [&](json tol) {
    PodBuilder b("p");
    if (!tol.is_null()) b.toleration(std::move(tol));
    return find_untolerated_taint(*parse_pod(b, in), *node) != nullptr;
  };
  EXPECT_TRUE(untolerated(nullptr));
  EXPECT_FALSE(untolerated({{"key", "dedicated"}, {"value", "gpu"}, {"effect", "NoSchedule"}}));
  EXPECT_FALSE(untolerated({{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}}));
  EXPECT_TRUE(untolerated({{"key", "dedicated"}, {"value", "cpu"}}));
  EXPECT_FALSE(untolerated({{"key", "dedicated"}, {"operator", "Exists"}}));
  EXPECT_TRUE(untolerated({{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoExecute"}}));
  EXPECT_FALSE(untolerated({{"operator", "Exists"}}));
  EXPECT_TRUE(untolerated({{"key", "other"}, {"operator", "Exists"}}));
  EXPECT_TRUE(untolerated({{"key", "dedicated"}, {"operator", "Bogus"}}));
}

TEST(TaintTolerationTest, NoExecuteFiltersAndPreferNoScheduleDoesNot) {
  TestCluster t;
  t.add_node(NodeBuilder("evicting").taint("k", "v", "NoExecute"));
  t.add_node(NodeBuilder("soft").taint("k", "v", "PreferNoSchedule"));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p")), (std::set<std::string>{"soft"}));
  t.cluster.remove_node("soft");
  EXPECT_EQ(t.message(PodBuilder("p")),
            "0/1 nodes are available: 1 node(s) had untolerated taint {k: v}. preemption: 0/1 "
            "nodes are available: 1 " +
                std::string(kNotHelpful) + "..");
}

// ---- NodeAffinity ---------------------------------------------------------------------------

json required_terms(json terms) {
  return {{"requiredDuringSchedulingIgnoredDuringExecution", {{"nodeSelectorTerms", terms}}}};
}

json expr(const std::string& key, const std::string& op, json values = nullptr) {
  json e = {{"key", key}, {"operator", op}};
  if (!values.is_null()) e["values"] = values;
  return e;
}

class NodeAffinityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t.add_node(NodeBuilder("a").label("zone", "east").label("gen", "3"));
    t.add_node(NodeBuilder("b").label("zone", "west").label("gen", "5"));
    t.add_node(NodeBuilder("c"));
  }
  std::set<std::string> with_terms(json terms) {
    return feasible_nodes(t, PodBuilder("p").affinity("nodeAffinity", required_terms(terms)));
  }
  TestCluster t;
};

TEST_F(NodeAffinityTest, NodeSelector) {
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p").node_selector("zone", "east")),
            (std::set<std::string>{"a"}));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p").node_selector("zone", "north")),
            (std::set<std::string>{}));
  EXPECT_EQ(t.message(PodBuilder("p").node_selector("zone", "north")),
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/3 nodes are available: 3 " +
                std::string(kNotHelpful) + "..");
}

TEST_F(NodeAffinityTest, Operators) {
  using S = std::set<std::string>;
  auto term = [](json e) { return json::array({{{"matchExpressions", json::array({e})}}}); };
  EXPECT_EQ(with_terms(term(expr("zone", "In", {"east", "west"}))), (S{"a", "b"}));
  EXPECT_EQ(with_terms(term(expr("zone", "NotIn", {"east"}))), (S{"b", "c"}));
  EXPECT_EQ(with_terms(term(expr("zone", "Exists"))), (S{"a", "b"}));
  EXPECT_EQ(with_terms(term(expr("zone", "DoesNotExist"))), (S{"c"}));
  EXPECT_EQ(with_terms(term(expr("gen", "Gt", {"4"}))), (S{"b"}));
  EXPECT_EQ(with_terms(term(expr("gen", "Lt", {"4"}))), (S{"a"}));
  EXPECT_EQ(with_terms(term(expr("zone", "Bogus", {"x"}))), (S{}));
}

TEST_F(NodeAffinityTest, TermsAreOredAndExpressionsAnded) {
  using S = std::set<std::string>;
  json two_terms = json::array({{{"matchExpressions", {expr("zone", "In", {"east"})}}},
                                {{"matchExpressions", {expr("zone", "DoesNotExist")}}}});
  EXPECT_EQ(with_terms(two_terms), (S{"a", "c"}));
  json anded =
      json::array({{{"matchExpressions", {expr("zone", "Exists"), expr("gen", "In", {"5"})}}}});
  EXPECT_EQ(with_terms(anded), (S{"b"}));
  EXPECT_EQ(with_terms(json::array()), (S{}));
  EXPECT_EQ(with_terms(json::array({json::object()})), (S{}));
}

TEST_F(NodeAffinityTest, MatchFieldsOnNodeName) {
  using S = std::set<std::string>;
  EXPECT_EQ(with_terms(json::array(
                {{{"matchFields",
                   {{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"c"}}}}}}})),
            (S{"c"}));
  EXPECT_EQ(with_terms(json::array(
                {{{"matchFields",
                   {{{"key", "metadata.name"}, {"operator", "NotIn"}, {"values", {"c"}}}}}}})),
            (S{"a", "b"}));
}

TEST_F(NodeAffinityTest, SelectorAndAffinityMustBothMatch) {
  PodBuilder p("p");
  p.node_selector("zone", "east");
  p.affinity("nodeAffinity",
             required_terms(json::array({{{"matchExpressions", {expr("gen", "In", {"5"})}}}})));
  EXPECT_EQ(feasible_nodes(t, p), (std::set<std::string>{}));
}

// ---- NodePorts ------------------------------------------------------------------------------

TEST(NodePortsTest, Conflicts) {
  TestCluster t;
  t.add_node(NodeBuilder("n"));
  t.add_pod(PodBuilder("web").host_port(80).node("n"));
  t.add_pod(PodBuilder("dns").host_port(53, "10.0.0.1", "UDP").node("n"));
  auto fits = [&](const json& pod) { return t.schedule(pod).ok(); };
  EXPECT_FALSE(fits(PodBuilder("p").host_port(80)));
  EXPECT_FALSE(fits(PodBuilder("p").host_port(80, "10.0.0.2")));
  EXPECT_TRUE(fits(PodBuilder("p").host_port(80, "", "UDP")));
  EXPECT_TRUE(fits(PodBuilder("p").host_port(81)));
  EXPECT_FALSE(fits(PodBuilder("p").host_port(53, "10.0.0.1", "UDP")));
  EXPECT_FALSE(fits(PodBuilder("p").host_port(53, "", "UDP")));
  EXPECT_TRUE(fits(PodBuilder("p").host_port(53, "10.0.0.2", "UDP")));
  EXPECT_TRUE(fits(PodBuilder("p").host_port(53, "10.0.0.1", "TCP")));
  EXPECT_EQ(t.message(PodBuilder("p").host_port(80)),
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod "
            "ports. preemption: 0/1 nodes are available: 1 " +
                std::string(kNoVictims) + "..");
}

// ---- InterPodAffinity -----------------------------------------------------------------------

class InterPodAffinityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t.add_node(NodeBuilder("a1").label("zone", "a"));
    t.add_node(NodeBuilder("a2").label("zone", "a"));
    t.add_node(NodeBuilder("b1").label("zone", "b"));
    t.add_node(NodeBuilder("nozone"));
  }
  json required(json term) {
    return {{"requiredDuringSchedulingIgnoredDuringExecution", json::array({std::move(term)})}};
  }
  TestCluster t;
};

TEST_F(InterPodAffinityTest, RequiredAffinityFollowsMatchingPods) {
  t.add_pod(PodBuilder("db").label("app", "db").node("a2"));
  EXPECT_EQ(
      feasible_nodes(t, PodBuilder("web").affinity("podAffinity", required(pod_term("app", "db")))),
      (std::set<std::string>{"a2"}));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("web").affinity("podAffinity",
                                                         required(pod_term("app", "db", "zone")))),
            (std::set<std::string>{"a1", "a2"}));
  EXPECT_EQ(
      t.message(PodBuilder("web").affinity("podAffinity", required(pod_term("app", "cache")))),
      "0/4 nodes are available: 4 node(s) didn't match pod affinity rules. preemption: 0/4 "
      "nodes are available: 4 " +
          std::string(kNotHelpful) + "..");
}

TEST_F(InterPodAffinityTest, FirstPodOfAGroupMayMatchItself) {
  PodBuilder first("first");
  first.label("app", "cache").affinity("podAffinity", required(pod_term("app", "cache", "zone")));
  // No pod matches yet, but the pod matches its own term: any node with the topology key.
  EXPECT_EQ(feasible_nodes(t, first), (std::set<std::string>{"a1", "a2", "b1"}));
}

TEST_F(InterPodAffinityTest, RequiredAntiAffinitySpreads) {
  t.cluster.remove_node("nozone");
  std::set<std::string> zones;
  for (int i = 0; i < 2; ++i) {
    PodBuilder p("web" + std::to_string(i));
    p.label("app", "web").affinity("podAntiAffinity", required(pod_term("app", "web", "zone")));
    std::string node = t.schedule_and_assume(p);
    ASSERT_NE(node, "");
    zones.insert(node == "b1" ? "b" : "a");
  }
  EXPECT_EQ(zones.size(), 2u);
  PodBuilder third("web2");
  third.label("app", "web").affinity("podAntiAffinity", required(pod_term("app", "web", "zone")));
  EXPECT_FALSE(t.schedule(third).ok());
}

TEST_F(InterPodAffinityTest, AntiAffinityRejectsNodesWithMatchingPods) {
  t.add_pod(PodBuilder("noisy").label("app", "noisy").node("a1"));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("p").affinity("podAntiAffinity",
                                                       required(pod_term("app", "noisy", "zone")))),
            (std::set<std::string>{"b1", "nozone"}));
  t.cluster.remove_node("b1");
  t.cluster.remove_node("nozone");
  EXPECT_EQ(t.message(PodBuilder("p").affinity("podAntiAffinity",
                                               required(pod_term("app", "noisy", "zone")))),
            "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. preemption: "
            "0/2 nodes are available: 2 " +
                std::string(kNoVictims) + "..");
}

TEST_F(InterPodAffinityTest, ExistingPodsAntiAffinityIsSymmetric) {
  t.add_pod(PodBuilder("loner").node("a1").affinity("podAntiAffinity",
                                                    required(pod_term("app", "web", "zone"))));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("web").label("app", "web")),
            (std::set<std::string>{"b1", "nozone"}));
  EXPECT_EQ(feasible_nodes(t, PodBuilder("other").label("app", "other")),
            (std::set<std::string>{"a1", "a2", "b1", "nozone"}));
  t.cluster.remove_node("b1");
  t.cluster.remove_node("nozone");
  EXPECT_EQ(t.message(PodBuilder("web").label("app", "web")),
            "0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules. "
            "preemption: 0/2 nodes are available: 2 " +
                std::string(kNoVictims) + "..");
}

TEST_F(InterPodAffinityTest, TermsApplyToTheirNamespaces) {
  t.add_pod(PodBuilder("db", "data").label("app", "db").node("b1"));
  // By default a term only looks at the pod's own namespace.
  EXPECT_FALSE(
      t.schedule(PodBuilder("web").affinity("podAffinity", required(pod_term("app", "db")))).ok());
  json named = pod_term("app", "db");
  named["namespaces"] = {"data"};
  EXPECT_EQ(feasible_nodes(t, PodBuilder("web").affinity("podAffinity", required(named))),
            (std::set<std::string>{"b1"}));
  json all = pod_term("app", "db");
  all["namespaceSelector"] = json::object();
  EXPECT_EQ(feasible_nodes(t, PodBuilder("web").affinity("podAffinity", required(all))),
            (std::set<std::string>{"b1"}));
  json labelled = pod_term("app", "db");
  labelled["namespaceSelector"] = {{"matchLabels", {{"tier", "data"}}}};
  EXPECT_FALSE(t.schedule(PodBuilder("web").affinity("podAffinity", required(labelled))).ok());
  LabelSet ns_labels;
  ns_labels.set(t.cluster.interner().intern("tier"), t.cluster.interner().intern("data"));
  t.cluster.set_namespace_labels("data", ns_labels);
  EXPECT_EQ(feasible_nodes(t, PodBuilder("web").affinity("podAffinity", required(labelled))),
            (std::set<std::string>{"b1"}));
}

// ---- sampling -------------------------------------------------------------------------------

TEST(SamplingTest, NumFeasibleNodesToFindFollowsKubernetes) {
  EXPECT_EQ(num_feasible_nodes_to_find(0, 50), 50u);
  EXPECT_EQ(num_feasible_nodes_to_find(0, 100), 100u);  // 49% of 100 is below the minimum
  EXPECT_EQ(num_feasible_nodes_to_find(0, 1000), 420u);
  EXPECT_EQ(num_feasible_nodes_to_find(0, 5000), 500u);
  EXPECT_EQ(num_feasible_nodes_to_find(0, 20000), 1000u);
  EXPECT_EQ(num_feasible_nodes_to_find(30, 1000), 300u);
  EXPECT_EQ(num_feasible_nodes_to_find(100, 1000), 1000u);
}

TEST(SamplingTest, ScanStopsEarlyAndRotatesOverAllNodes) {
  TestCluster t;
  for (int i = 0; i < 1000; ++i) t.add_node(NodeBuilder("n" + std::to_string(i)));
  std::set<std::string> chosen;
  size_t evaluated = 0;
  for (int i = 0; i < 50; ++i) {
    auto r = t.schedule(PodBuilder("p"));
    ASSERT_TRUE(r.ok());
    evaluated = r->evaluated_nodes;
    EXPECT_EQ(r->feasible_nodes, 420u);
    chosen.insert(r->node_name);
  }
  EXPECT_EQ(evaluated, 420u);
  // The window moves on each time, so choices are not stuck in the first 420 nodes.
  EXPECT_GT(chosen.size(), 40u);
}

}  // namespace
}  // namespace skiff::scheduler
