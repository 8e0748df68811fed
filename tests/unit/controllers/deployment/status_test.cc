// Deployment status, conditions, annotations and template hashing, over JSON.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "controllers/common/conditions.h"
#include "controllers/common/pod_template_hash.h"
#include "controllers/deployment/annotations.h"
#include "controllers/deployment/progress.h"
#include "controllers/deployment/rollout.h"

namespace skiff::controllers::deployment {
namespace {

using nlohmann::json;
namespace cc = ::skiff::controllers::common;

TimePoint at(int64_t seconds) { return TimePoint(std::chrono::seconds(seconds)); }
constexpr int64_t kT0 = 1'700'000'000;

json deployment(int replicas, int64_t generation = 2) {
  return json{
      {"metadata", {{"name", "web"}, {"namespace", "ns"}, {"generation", generation}}},
      {"spec",
       {{"replicas", replicas},
        {"strategy",
         {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 1}}}}},
        {"progressDeadlineSeconds", 600}}},
      {"status", json::object()}};
}

ReplicaSetView rs(std::string name, int32_t replicas, int32_t ready, int32_t available) {
  ReplicaSetView v;
  v.name = std::move(name);
  v.replicas = replicas;
  v.status_replicas = replicas;
  v.ready_replicas = ready;
  v.available_replicas = available;
  return v;
}

std::string reason_of(const json& status, std::string_view type) {
  const json* c = cc::find_condition(status, type);
  return c == nullptr ? "" : c->value("reason", "");
}

TEST(TemplateHash, IsStableAndAValidLabelValue) {
  json t = {{"metadata", {{"labels", {{"app", "web"}}}}},
            {"spec", {{"containers", {{{"name", "c"}, {"image", "nginx:1"}}}}}}};
  std::string h = cc::compute_hash(t, std::nullopt);
  EXPECT_EQ(h, cc::compute_hash(t, std::nullopt));
  EXPECT_FALSE(h.empty());
  EXPECT_LE(h.size(), 10u);
  for (char c : h) EXPECT_NE(std::string("bcdfghjklmnpqrstvwxz2456789").find(c), std::string::npos);
}

TEST(TemplateHash, DependsOnTheTemplateAndTheCollisionCount) {
  json t1 = {{"spec", {{"containers", {{{"name", "c"}, {"image", "nginx:1"}}}}}}};
  json t2 = {{"spec", {{"containers", {{{"name", "c"}, {"image", "nginx:2"}}}}}}};
  EXPECT_NE(cc::compute_hash(t1, std::nullopt), cc::compute_hash(t2, std::nullopt));
  EXPECT_NE(cc::compute_hash(t1, std::nullopt), cc::compute_hash(t1, 1));
  EXPECT_NE(cc::compute_hash(t1, 1), cc::compute_hash(t1, 2));
  // Empty and null values are as good as absent.
  json t3 = t1;
  t3["metadata"] = {{"labels", json::object()}, {"annotations", nullptr}};
  EXPECT_EQ(cc::compute_hash(t1, std::nullopt), cc::compute_hash(t3, std::nullopt));
}

TEST(TemplateHash, FnvAndSafeEncodingMatchGo) {
  // hash/fnv New32a over "" and "a".
  EXPECT_EQ(cc::fnv32a(""), 2166136261u);
  EXPECT_EQ(cc::fnv32a("a"), 0xe40c292cu);
  // rand.SafeEncodeString maps byte b to alphanums[b % 27].
  EXPECT_EQ(cc::safe_encode_string("0123"), "4567");
}

TEST(TemplateHash, EqualIgnoreHashIgnoresOnlyTheHashLabel) {
  json a = {{"metadata", {{"labels", {{"app", "web"}, {"pod-template-hash", "abc"}}}}},
            {"spec", {{"containers", json::array()}}}};
  json b = {{"metadata", {{"labels", {{"app", "web"}}}}}};
  EXPECT_TRUE(cc::equal_ignore_hash(a, b));
  b["metadata"]["labels"]["tier"] = "front";
  EXPECT_FALSE(cc::equal_ignore_hash(a, b));
  json only_hash = {{"metadata", {{"labels", {{"pod-template-hash", "x"}}}}}};
  EXPECT_TRUE(cc::equal_ignore_hash(only_hash, json::object()));
}

TEST(Conditions, SameStatusAndReasonChangesNothing) {
  json status = json::object();
  EXPECT_TRUE(
      cc::set_condition(status, cc::new_condition("Available", "True", "A", "m", at(kT0), true)));
  EXPECT_FALSE(cc::set_condition(
      status, cc::new_condition("Available", "True", "A", "other", at(kT0 + 5), true)));
  EXPECT_EQ(status["conditions"][0]["message"], "m");
}

TEST(Conditions, SameStatusKeepsTheTransitionTime) {
  json status = json::object();
  cc::set_condition(status, cc::new_condition("Progressing", "True", "A", "", at(kT0), true));
  cc::set_condition(status, cc::new_condition("Progressing", "True", "B", "", at(kT0 + 9), true));
  const json* c = cc::find_condition(status, "Progressing");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["reason"], "B");
  EXPECT_EQ((*c)["lastTransitionTime"], "2023-11-14T22:13:20Z");
  EXPECT_EQ((*c)["lastUpdateTime"], "2023-11-14T22:13:29Z");
  cc::set_condition(status, cc::new_condition("Progressing", "False", "C", "", at(kT0 + 20), true));
  EXPECT_EQ((*cc::find_condition(status, "Progressing"))["lastTransitionTime"],
            "2023-11-14T22:13:40Z");
  EXPECT_TRUE(cc::remove_condition(status, "Progressing"));
  EXPECT_FALSE(status.contains("conditions"));
}

TEST(CalculateStatus, CountsAndAvailability) {
  json d = deployment(4);
  ReplicaSetView old_rs = rs("old", 2, 2, 2);
  ReplicaSetView new_rs = rs("new", 3, 2, 1);
  json status = calculate_status(d, {old_rs, new_rs}, &new_rs, at(kT0));
  EXPECT_EQ(status["observedGeneration"], 2);
  EXPECT_EQ(status["replicas"], 5);
  EXPECT_EQ(status["updatedReplicas"], 3);
  EXPECT_EQ(status["readyReplicas"], 4);
  EXPECT_EQ(status["availableReplicas"], 3);
  EXPECT_EQ(status["unavailableReplicas"], 2);
  // 3 available >= 4 - maxUnavailable 1.
  EXPECT_EQ(reason_of(status, "Available"), "MinimumReplicasAvailable");

  ReplicaSetView slow = rs("new", 4, 0, 0);
  status = calculate_status(d, {slow}, &slow, at(kT0));
  EXPECT_EQ(reason_of(status, "Available"), "MinimumReplicasUnavailable");
  EXPECT_EQ((*cc::find_condition(status, "Available"))["status"], "False");
  EXPECT_FALSE(status.contains("availableReplicas"));  // zero counts are omitted
}

TEST(RolloutStatus, ProgressThenCompletion) {
  json d = deployment(2);
  ReplicaSetView new_rs = rs("web-abc", 2, 1, 1);
  json status = rollout_status(d, {new_rs}, &new_rs, at(kT0));
  EXPECT_EQ(reason_of(status, "Progressing"), "ReplicaSetUpdated");
  EXPECT_EQ((*cc::find_condition(status, "Progressing"))["message"],
            "ReplicaSet \"web-abc\" is progressing.");
  d["status"] = status;

  new_rs.ready_replicas = new_rs.available_replicas = 2;
  status = rollout_status(d, {new_rs}, &new_rs, at(kT0 + 3));
  EXPECT_EQ(reason_of(status, "Progressing"), "NewReplicaSetAvailable");
  EXPECT_EQ((*cc::find_condition(status, "Progressing"))["message"],
            "ReplicaSet \"web-abc\" has successfully progressed.");
  EXPECT_TRUE(deployment_complete(d, status));
  d["status"] = status;

  // A resync of the finished rollout changes nothing.
  json again = rollout_status(d, {new_rs}, &new_rs, at(kT0 + 100));
  EXPECT_TRUE(status_equal(again, status));
}

TEST(RolloutStatus, TimesOutWithoutProgress) {
  json d = deployment(2);
  d["spec"]["progressDeadlineSeconds"] = 10;
  ReplicaSetView new_rs = rs("web-abc", 2, 0, 0);
  json status = rollout_status(d, {new_rs}, &new_rs, at(kT0));
  cc::set_condition(
      status, cc::new_condition("Progressing", "True", "NewReplicaSetCreated", "", at(kT0), true));
  d["status"] = status;
  // Within the deadline: no change, and a requeue for when it passes.
  json same = rollout_status(d, {new_rs}, &new_rs, at(kT0 + 5));
  EXPECT_TRUE(status_equal(same, d["status"]));
  auto after = stuck_requeue_after(d, same, at(kT0 + 5));
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->count(), 6000);
  // At the deadline itself: one look a second later, not a burst of requeues.
  after = stuck_requeue_after(d, same, at(kT0 + 10));
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->count(), 1000);
  // Past it: ProgressDeadlineExceeded, and no more requeues.
  json late = rollout_status(d, {new_rs}, &new_rs, at(kT0 + 11));
  EXPECT_EQ(reason_of(late, "Progressing"), "ProgressDeadlineExceeded");
  EXPECT_EQ((*cc::find_condition(late, "Progressing"))["status"], "False");
  d["status"] = late;
  EXPECT_FALSE(stuck_requeue_after(d, late, at(kT0 + 12)).has_value());
}

TEST(RolloutStatus, NoDeadlineNoProgressingCondition) {
  json d = deployment(1);
  d["spec"].erase("progressDeadlineSeconds");
  cc::set_condition(d["status"], cc::new_condition("Progressing", "True", "ReplicaSetUpdated", "",
                                                   at(kT0), true));
  ReplicaSetView new_rs = rs("web-abc", 1, 1, 1);
  json status = rollout_status(d, {new_rs}, &new_rs, at(kT0));
  EXPECT_EQ(cc::find_condition(status, "Progressing"), nullptr);
}

TEST(RolloutStatus, ReplicaFailureCarriesOverFromTheNewReplicaSet) {
  json d = deployment(1);
  ReplicaSetView old_rs = rs("old", 0, 0, 0);
  old_rs.replica_failure = {{"type", "ReplicaFailure"}, {"status", "True"}, {"reason", "Old"}};
  ReplicaSetView new_rs = rs("new", 1, 0, 0);
  new_rs.replica_failure = {{"type", "ReplicaFailure"},
                            {"status", "True"},
                            {"reason", "FailedCreate"},
                            {"lastTransitionTime", "2024-01-01T00:00:00Z"}};
  json status = rollout_status(d, {old_rs, new_rs}, &new_rs, at(kT0));
  const json* c = cc::find_condition(status, "ReplicaFailure");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["reason"], "FailedCreate");
  EXPECT_EQ((*c)["lastUpdateTime"], "2024-01-01T00:00:00Z");
  new_rs.replica_failure = nullptr;
  old_rs.replica_failure = nullptr;
  d["status"] = status;
  status = rollout_status(d, {old_rs, new_rs}, &new_rs, at(kT0));
  EXPECT_EQ(cc::find_condition(status, "ReplicaFailure"), nullptr);
}

TEST(Annotations, NewReplicaSetGetsTheRevisionAndTheDeploymentsAnnotations) {
  json d = {{"metadata",
             {{"annotations",
               {{"team", "a"},
                {"deployment.kubernetes.io/revision", "9"},
                {"kubectl.kubernetes.io/last-applied-configuration", "{}"}}}}}};
  json r = json::object();
  EXPECT_TRUE(set_new_replica_set_annotations(d, r, "3", false, 4, 5));
  const json& a = r["metadata"]["annotations"];
  EXPECT_EQ(a["team"], "a");
  EXPECT_EQ(a["deployment.kubernetes.io/revision"], "3");
  EXPECT_EQ(a["deployment.kubernetes.io/desired-replicas"], "4");
  EXPECT_EQ(a["deployment.kubernetes.io/max-replicas"], "5");
  EXPECT_FALSE(a.contains("kubectl.kubernetes.io/last-applied-configuration"));
  EXPECT_FALSE(a.contains("deployment.kubernetes.io/revision-history"));
  // Nothing new: nothing changes.
  EXPECT_FALSE(set_new_replica_set_annotations(d, r, "3", true, 4, 5));
}

TEST(Annotations, ARolledBackReplicaSetRemembersItsRevisions) {
  json d = json::object();
  json r = {{"metadata", {{"annotations", {{"deployment.kubernetes.io/revision", "1"}}}}}};
  EXPECT_TRUE(set_new_replica_set_annotations(d, r, "3", true, 1, 2));
  EXPECT_EQ(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
  EXPECT_EQ(r["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "1");
  EXPECT_TRUE(set_new_replica_set_annotations(d, r, "5", true, 1, 2));
  EXPECT_EQ(r["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "1,3");
  // The history is capped: the oldest entries go.
  EXPECT_TRUE(set_new_replica_set_annotations(d, r, "7", true, 1, 2, 4));
  EXPECT_EQ(r["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "3,5");
  // A lower revision never replaces a higher one.
  EXPECT_FALSE(set_new_replica_set_annotations(d, r, "6", true, 1, 2));
}

TEST(Annotations, RollbackTakesTheReplicaSetsAnnotations) {
  json d = {{"metadata",
             {{"annotations",
               {{"deployment.kubernetes.io/revision", "4"}, {"team", "new"}, {"gone", "x"}}}}}};
  json r = {{"metadata",
             {{"annotations", {{"deployment.kubernetes.io/revision", "2"}, {"team", "old"}}}}}};
  set_deployment_annotations_to(d, r);
  EXPECT_EQ(d["metadata"]["annotations"],
            (json{{"deployment.kubernetes.io/revision", "4"}, {"team", "old"}}));
}

TEST(Annotations, ReplicasAnnotations) {
  json r = json::object();
  EXPECT_TRUE(replicas_annotations_need_update(r, 3, 4));
  EXPECT_TRUE(set_replicas_annotations(r, 3, 4));
  EXPECT_FALSE(replicas_annotations_need_update(r, 3, 4));
  EXPECT_FALSE(set_replicas_annotations(r, 3, 4));
  EXPECT_TRUE(replicas_annotations_need_update(r, 3, 5));
}

}  // namespace
}  // namespace skiff::controllers::deployment
