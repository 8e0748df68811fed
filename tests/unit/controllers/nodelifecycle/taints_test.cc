#include "controllers/nodelifecycle/taints.h"

#include <gtest/gtest.h>

#include <chrono>

namespace skiff::controllers::nodelifecycle {
namespace {

using namespace std::chrono_literals;

TimePoint at(const char* text) { return parse_rfc3339(text).value(); }

json node_with(const json& conditions, const json& spec = json::object()) {
  return {{"metadata", {{"name", "n"}, {"creationTimestamp", "2024-01-01T00:00:00Z"}}},
          {"spec", spec},
          {"status", {{"conditions", conditions}}}};
}

json cond(const char* type, const char* status) {
  return {{"type", type},
          {"status", status},
          {"lastHeartbeatTime", "2024-01-01T00:00:10Z"},
          {"lastTransitionTime", "2024-01-01T00:00:05Z"}};
}

json taint(const char* key, const char* effect, const char* value = "") {
  json t = {{"key", key}, {"effect", effect}};
  if (value[0] != '\0') t["value"] = value;
  return t;
}

json pod_tolerating(const json& tolerations) {
  return {{"spec", {{"tolerations", tolerations}}}};
}

TEST(Tolerations, MatchAsKubernetes) {
  json t = taint("dedicated", "NoExecute", "gpu");
  EXPECT_TRUE(tolerates({{"key", "dedicated"}, {"value", "gpu"}}, t));
  EXPECT_TRUE(tolerates({{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}}, t));
  EXPECT_FALSE(tolerates({{"key", "dedicated"}, {"value", "cpu"}}, t));
  EXPECT_TRUE(tolerates({{"key", "dedicated"}, {"operator", "Exists"}}, t));
  EXPECT_TRUE(tolerates({{"operator", "Exists"}}, t)) << "an empty key with Exists matches all";
  EXPECT_FALSE(tolerates({{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoSchedule"}},
                         t));
  EXPECT_TRUE(tolerates({{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoExecute"}},
                        t));
  EXPECT_FALSE(tolerates({{"key", "other"}, {"operator", "Exists"}}, t));
  EXPECT_FALSE(tolerates({{"key", "dedicated"}, {"operator", "Lt"}}, t));
}

TEST(Tolerations, DefaultTolerationAppliesWithoutOwnOnes) {
  json unreachable = json::array({taint(kTaintUnreachable, "NoExecute")});
  EXPECT_EQ(toleration_time(json::object(), unreachable, 300s), 300s);
  EXPECT_EQ(toleration_time(json::object(), json::array(), 300s), std::nullopt);
  // A toleration of its own replaces the default.
  json forever = pod_tolerating({{{"key", kTaintUnreachable}, {"operator", "Exists"}}});
  EXPECT_EQ(toleration_time(forever, unreachable, 300s), std::nullopt);
  json short_one = pod_tolerating({{{"key", kTaintUnreachable},
                                    {"operator", "Exists"},
                                    {"effect", "NoExecute"},
                                    {"tolerationSeconds", 5}}});
  EXPECT_EQ(toleration_time(short_one, unreachable, 300s), 5s);
  json negative = pod_tolerating({{{"key", kTaintUnreachable},
                                   {"operator", "Exists"},
                                   {"effect", "NoExecute"},
                                   {"tolerationSeconds", -3}}});
  EXPECT_EQ(toleration_time(negative, unreachable, 300s), 0s);
  // A NoSchedule toleration does not count: the default still applies.
  json no_schedule = pod_tolerating(
      {{{"key", kTaintUnreachable}, {"operator", "Exists"}, {"effect", "NoSchedule"}}});
  EXPECT_EQ(toleration_time(no_schedule, unreachable, 300s), 300s);
}

TEST(Tolerations, UntoleratedTaintMeansNow) {
  json taints = json::array({taint(kTaintUnreachable, "NoExecute"), taint("x", "NoExecute")});
  EXPECT_EQ(toleration_time(json::object(), taints, 300s), 0s);
  json both = pod_tolerating({{{"key", "x"}, {"operator", "Exists"}, {"tolerationSeconds", 60}}});
  EXPECT_EQ(toleration_time(both, taints, 300s), 60s) << "the shortest of the tolerations used";
}

TEST(NodeStatus, SilentKubeletMakesConditionsUnknown) {
  json node = node_with(json::array({cond("Ready", "True"), cond("MemoryPressure", "False")}));
  ASSERT_TRUE(mark_node_status_unknown(node, at("2024-01-01T00:01:00Z")));
  const json* ready = find_condition(node, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ((*ready)["status"], "Unknown");
  EXPECT_EQ((*ready)["reason"], "NodeStatusUnknown");
  EXPECT_EQ((*ready)["message"], "Kubelet stopped posting node status.");
  EXPECT_EQ((*ready)["lastTransitionTime"], "2024-01-01T00:01:00Z");
  EXPECT_EQ((*ready)["lastHeartbeatTime"], "2024-01-01T00:00:10Z");
  EXPECT_EQ(condition_status(node, "MemoryPressure"), "Unknown");
  const json* disk = find_condition(node, "DiskPressure");
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ((*disk)["reason"], "NodeStatusNeverUpdated");
  EXPECT_EQ((*disk)["message"], "Kubelet never posted node status.");
  EXPECT_EQ((*disk)["lastHeartbeatTime"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(condition_status(node, "PIDPressure"), "Unknown");
  // Already Unknown: nothing more to write.
  EXPECT_FALSE(mark_node_status_unknown(node, at("2024-01-01T00:02:00Z")));
  EXPECT_EQ((*find_condition(node, "Ready"))["lastTransitionTime"], "2024-01-01T00:01:00Z");
}

TEST(NodeTaints, FollowConditions) {
  TimePoint t = at("2024-01-01T00:01:00Z");
  EXPECT_EQ(desired_taints(node_with(json::array({cond("Ready", "True")})), t), json::array());

  json unknown = desired_taints(node_with(json::array({cond("Ready", "Unknown")})), t);
  ASSERT_EQ(unknown.size(), 2u);
  EXPECT_EQ(unknown[0], taint(kTaintUnreachable, "NoSchedule"));
  EXPECT_EQ(unknown[1]["key"], kTaintUnreachable);
  EXPECT_EQ(unknown[1]["effect"], "NoExecute");
  EXPECT_EQ(unknown[1]["timeAdded"], "2024-01-01T00:01:00Z");

  json not_ready =
      desired_taints(node_with(json::array({cond("Ready", "False"), cond("MemoryPressure", "True"),
                                            cond("DiskPressure", "True"), cond("PIDPressure", "True"),
                                            cond("NetworkUnavailable", "True")}),
                               {{"unschedulable", true}}),
                     t);
  std::set<std::pair<std::string, std::string>> got;
  for (const json& x : not_ready) {
    got.insert({x["key"].get<std::string>(), x["effect"].get<std::string>()});
  }
  std::set<std::pair<std::string, std::string>> want = {
      {kTaintNotReady, "NoSchedule"},        {kTaintNotReady, "NoExecute"},
      {kTaintMemoryPressure, "NoSchedule"},  {kTaintDiskPressure, "NoSchedule"},
      {kTaintPIDPressure, "NoSchedule"},     {kTaintNetworkUnavailable, "NoSchedule"},
      {kTaintUnschedulable, "NoSchedule"}};
  EXPECT_EQ(got, want);
}

TEST(NodeTaints, KeepForeignTaintsAndTimeAdded) {
  json earlier = {{"key", kTaintUnreachable},
                  {"effect", "NoExecute"},
                  {"timeAdded", "2024-01-01T00:00:30Z"}};
  json foreign = taint("dedicated", "NoSchedule", "db");
  json user_not_ready = taint(kTaintNotReady, "PreferNoSchedule");
  json spec = {{"taints", {foreign, earlier, user_not_ready, taint(kTaintNotReady, "NoExecute")}}};
  json out = desired_taints(node_with(json::array({cond("Ready", "Unknown")}), spec),
                            at("2024-01-01T00:05:00Z"));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], foreign);
  EXPECT_EQ(out[1], earlier) << "a NoExecute taint still wanted keeps its timeAdded";
  EXPECT_EQ(out[2], user_not_ready) << "PreferNoSchedule is not the controller's";
  EXPECT_EQ(out[3], taint(kTaintUnreachable, "NoSchedule"));

  // Healthy again: only the foreign taints stay.
  json healthy = desired_taints(node_with(json::array({cond("Ready", "True")}), {{"taints", out}}),
                                at("2024-01-01T00:06:00Z"));
  EXPECT_EQ(healthy, json::array({foreign, user_not_ready}));
}

}  // namespace
}  // namespace skiff::controllers::nodelifecycle
