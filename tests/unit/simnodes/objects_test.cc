#include "simnodes/objects.h"

#include <gtest/gtest.h>

#include <chrono>

namespace skiff::simnodes {
namespace {

using namespace std::chrono_literals;

TimePoint at(const char* text) { return parse_rfc3339(text).value(); }

json pod_with(const json& spec, const json& status = json::object()) {
  return {{"metadata", {{"name", "p"}, {"namespace", "default"}, {"uid", "u-1"}}},
          {"spec", spec},
          {"status", status}};
}

TEST(Ipv4, ParsesAndFormatsDottedQuads) {
  EXPECT_EQ(parse_ipv4("10.42.0.1"), 0x0a2a0001u);
  EXPECT_EQ(format_ipv4(0x0a2a0001u), "10.42.0.1");
  EXPECT_EQ(format_ipv4(0xffffffffu), "255.255.255.255");
  for (const char* bad : {"", "10.42.0", "10.42.0.256", "10.42.0.1.2", "a.b.c.d", "10.42.0.1 ",
                          "1234.0.0.1"}) {
    EXPECT_FALSE(parse_ipv4(bad).has_value()) << bad;
  }
}

TEST(Ipv4, BlockIsMaskedToItsPrefix) {
  auto b = Ipv4Block::parse("10.42.3.7/24");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->to_string(), "10.42.3.0/24");
  EXPECT_EQ(b->size(), 256u);
  EXPECT_TRUE(b->contains(*parse_ipv4("10.42.3.255")));
  EXPECT_FALSE(b->contains(*parse_ipv4("10.42.4.0")));
  EXPECT_EQ(Ipv4Block::parse("0.0.0.0/0")->size(), uint64_t{1} << 32);
  EXPECT_FALSE(Ipv4Block::parse("10.42.0.0").has_value());
  EXPECT_FALSE(Ipv4Block::parse("10.42.0.0/33").has_value());
  EXPECT_FALSE(Ipv4Block::parse("10.42.0.0/x").has_value());
}

TEST(Ipv4, FallbackRangesAreDistinctPerNode) {
  EXPECT_EQ(fallback_pod_range(0).to_string(), "10.128.0.0/24");
  EXPECT_EQ(fallback_pod_range(1).to_string(), "10.128.1.0/24");
  EXPECT_EQ(fallback_pod_range(300).to_string(), "10.129.44.0/24");
}

TEST(Ipv4, NodePodRangePrefersPodCidrs) {
  json node = {{"spec", {{"podCIDR", "10.42.1.0/24"}, {"podCIDRs", {"fd00::/64", "10.42.2.0/24"}}}}};
  EXPECT_EQ(node_pod_range(node)->to_string(), "10.42.2.0/24");
  node["spec"].erase("podCIDRs");
  EXPECT_EQ(node_pod_range(node)->to_string(), "10.42.1.0/24");
  EXPECT_FALSE(node_pod_range(json{{"spec", json::object()}}).has_value());
}

TEST(NodeObjects, ConditionsKeepTransitionTimeWhileUnchanged) {
  json current = {{"status",
                   {{"conditions",
                     {{{"type", "Ready"},
                       {"status", "True"},
                       {"lastTransitionTime", "2024-01-01T00:00:00Z"}},
                      {{"type", "MemoryPressure"},
                       {"status", "Unknown"},
                       {"lastTransitionTime", "2024-01-01T00:00:00Z"}}}}}}};
  json conditions = node_conditions(&current, at("2024-01-02T00:00:00Z"));
  ASSERT_EQ(conditions.size(), 4u);
  for (const json& c : conditions) {
    EXPECT_EQ(c["lastHeartbeatTime"], "2024-01-02T00:00:00Z");
    if (c["type"] == "Ready") {
      EXPECT_EQ(c["status"], "True");
      EXPECT_EQ(c["reason"], "KubeletReady");
      EXPECT_EQ(c["lastTransitionTime"], "2024-01-01T00:00:00Z");
    } else {
      EXPECT_EQ(c["status"], "False");
      EXPECT_EQ(c["lastTransitionTime"], "2024-01-02T00:00:00Z");
    }
  }
}

TEST(NodeObjects, NodeCarriesCapacityInfoLabelsAndTaints) {
  SimNodesOptions o;
  o.cpu = "8";
  o.memory = "16Gi";
  o.labels = {{"topology.kubernetes.io/zone", "z1"}};
  o.taints = {{"dedicated", "sim", "NoSchedule"}};
  json node = node_object(o, "sim-3", "172.16.0.4", at("2024-01-02T00:00:00Z"));
  EXPECT_EQ(node["metadata"]["name"], "sim-3");
  EXPECT_EQ(node["metadata"]["labels"]["kubernetes.io/hostname"], "sim-3");
  EXPECT_EQ(node["metadata"]["labels"][kSimulatedNodeLabel], "true");
  EXPECT_EQ(node["metadata"]["labels"]["topology.kubernetes.io/zone"], "z1");
  EXPECT_EQ(node["spec"]["taints"][0]["key"], "dedicated");
  const json& status = node["status"];
  EXPECT_EQ(status["capacity"]["cpu"], "8");
  EXPECT_EQ(status["allocatable"]["memory"], "16Gi");
  EXPECT_EQ(status["capacity"]["pods"], "110");
  EXPECT_EQ(status["addresses"][0]["type"], "InternalIP");
  EXPECT_EQ(status["addresses"][0]["address"], "172.16.0.4");
  EXPECT_EQ(status["nodeInfo"]["kubeletVersion"], "v1.32.0-skiff");
  EXPECT_EQ(status["nodeInfo"]["operatingSystem"], "linux");
  EXPECT_EQ(status["nodeInfo"]["architecture"], "amd64");
  EXPECT_EQ(status["nodeInfo"]["machineID"].get<std::string>().size(), 32u);
}

TEST(NodeObjects, LeaseIsOwnedByItsNode) {
  json lease = lease_object("sim-0", "uid-0", 40, at("2024-01-02T00:00:00Z"));
  EXPECT_EQ(lease["metadata"]["namespace"], "kube-node-lease");
  EXPECT_EQ(lease["spec"]["holderIdentity"], "sim-0");
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 40);
  EXPECT_EQ(lease["spec"]["renewTime"], "2024-01-02T00:00:00.000000Z");
  EXPECT_EQ(lease["metadata"]["ownerReferences"][0]["uid"], "uid-0");
  EXPECT_FALSE(lease_object("sim-0", "", 40, now())["metadata"].contains("ownerReferences"));
}

TEST(PodStatus, RunningStatusReportsEveryContainerReady) {
  json pod = pod_with(
      {{"containers", {{{"name", "web"}, {"image", "nginx:1.25"}},
                       {{"name", "log"}, {"image", "registry.local:5000/team/log@sha256:ab"}}}},
       {"initContainers",
        {{{"name", "setup"}, {"image", "busybox"}},
         {{"name", "proxy"}, {"image", "envoy"}, {"restartPolicy", "Always"}}}}},
      {{"phase", "Pending"},
       {"conditions",
        {{{"type", "PodScheduled"},
          {"status", "True"},
          {"lastTransitionTime", "2024-01-01T00:00:00Z"}}}}});
  json s = running_pod_status(pod, "10.42.0.5", "172.16.0.1", at("2024-01-02T00:00:00Z"));
  EXPECT_EQ(s["phase"], "Running");
  EXPECT_EQ(s["podIP"], "10.42.0.5");
  EXPECT_EQ(s["podIPs"][0]["ip"], "10.42.0.5");
  EXPECT_EQ(s["hostIP"], "172.16.0.1");
  EXPECT_EQ(s["startTime"], "2024-01-02T00:00:00Z");
  std::map<std::string, json> conditions;
  for (const json& c : s["conditions"]) conditions[c["type"]] = c;
  for (const char* type :
       {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
    ASSERT_TRUE(conditions.count(type)) << type;
    EXPECT_EQ(conditions[type]["status"], "True") << type;
  }
  EXPECT_EQ(conditions["PodScheduled"]["lastTransitionTime"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(conditions["Ready"]["lastTransitionTime"], "2024-01-02T00:00:00Z");

  ASSERT_EQ(s["containerStatuses"].size(), 2u);
  const json& web = s["containerStatuses"][0];
  EXPECT_EQ(web["name"], "web");
  EXPECT_EQ(web["ready"], true);
  EXPECT_EQ(web["started"], true);
  EXPECT_EQ(web["restartCount"], 0);
  EXPECT_EQ(web["state"]["running"]["startedAt"], "2024-01-02T00:00:00Z");
  EXPECT_EQ(web["imageID"].get<std::string>().rfind("docker.io/library/nginx@sha256:", 0), 0u);
  EXPECT_EQ(s["containerStatuses"][1]["imageID"].get<std::string>().rfind(
                "registry.local:5000/team/log@sha256:", 0),
            0u);

  ASSERT_EQ(s["initContainerStatuses"].size(), 2u);
  EXPECT_EQ(s["initContainerStatuses"][0]["state"]["terminated"]["exitCode"], 0);
  EXPECT_EQ(s["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
  EXPECT_TRUE(s["initContainerStatuses"][1]["state"].contains("running"));

  // Reported again later, the times of what did not change stay.
  pod["status"] = s;
  json again = running_pod_status(pod, "10.42.0.5", "172.16.0.1", at("2024-01-03T00:00:00Z"));
  EXPECT_EQ(again["startTime"], "2024-01-02T00:00:00Z");
  EXPECT_EQ(again["containerStatuses"][0]["state"]["running"]["startedAt"],
            "2024-01-02T00:00:00Z");
  EXPECT_EQ(again["conditions"], s["conditions"]);
}

TEST(PodStatus, CompletedStatusTerminatesContainers) {
  json pod = pod_with({{"restartPolicy", "Never"},
                       {"containers", {{{"name", "job"}, {"image", "busybox"}}}}});
  pod["status"] = running_pod_status(pod, "10.42.0.9", "172.16.0.1", at("2024-01-02T00:00:00Z"));
  EXPECT_TRUE(reported_running(pod));

  json ok = completed_pod_status(pod, 0, at("2024-01-02T00:00:05Z"));
  EXPECT_EQ(ok["phase"], "Succeeded");
  const json& term = ok["containerStatuses"][0]["state"]["terminated"];
  EXPECT_EQ(term["exitCode"], 0);
  EXPECT_EQ(term["reason"], "Completed");
  EXPECT_EQ(term["startedAt"], "2024-01-02T00:00:00Z");
  EXPECT_EQ(term["finishedAt"], "2024-01-02T00:00:05Z");
  EXPECT_EQ(ok["containerStatuses"][0]["ready"], false);
  for (const json& c : ok["conditions"]) {
    if (c["type"] == "Ready") {
      EXPECT_EQ(c["status"], "False");
      EXPECT_EQ(c["reason"], "PodCompleted");
    }
  }

  json failed = completed_pod_status(pod, 3, at("2024-01-02T00:00:05Z"));
  EXPECT_EQ(failed["phase"], "Failed");
  EXPECT_EQ(failed["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3);
  EXPECT_EQ(failed["containerStatuses"][0]["state"]["terminated"]["reason"], "Error");
}

TEST(PodStatus, RunToCompletionFollowsRestartPolicyAndAnnotations) {
  EXPECT_TRUE(runs_to_completion(pod_with({{"restartPolicy", "Never"}})));
  EXPECT_TRUE(runs_to_completion(pod_with({{"restartPolicy", "OnFailure"}})));
  EXPECT_FALSE(runs_to_completion(pod_with({{"restartPolicy", "Always"}})));
  EXPECT_FALSE(runs_to_completion(pod_with(json::object())));

  json pod = pod_with({{"restartPolicy", "Never"}});
  EXPECT_EQ(run_time(pod, 1500ms), 1500ms);
  EXPECT_EQ(exit_code(pod), 0);
  pod["metadata"]["annotations"] = {{kRunTimeAnnotation, "2m"}, {kExitCodeAnnotation, "7"}};
  EXPECT_EQ(run_time(pod, 1500ms), 120s);
  EXPECT_EQ(exit_code(pod), 7);
  pod["metadata"]["annotations"] = {{kRunTimeAnnotation, "soon"}, {kExitCodeAnnotation, "x"}};
  EXPECT_EQ(run_time(pod, 1500ms), 1500ms);
  EXPECT_EQ(exit_code(pod), 0);
}

TEST(PodStatus, PhasePredicates) {
  json pod = pod_with(json::object(), {{"phase", "Succeeded"}});
  EXPECT_TRUE(terminal(pod));
  EXPECT_FALSE(being_deleted(pod));
  pod["metadata"]["deletionTimestamp"] = "2024-01-02T00:00:00Z";
  EXPECT_TRUE(being_deleted(pod));
  EXPECT_FALSE(reported_running(pod_with(json::object(), {{"phase", "Running"}})));
}

}  // namespace
}  // namespace skiff::simnodes
