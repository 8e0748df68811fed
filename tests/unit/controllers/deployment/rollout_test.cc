// The rollout arithmetic of the Deployment controller, over plain data.
#include "controllers/deployment/rollout.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace skiff::controllers::deployment {
namespace {

using nlohmann::json;

DeploymentView rolling(int32_t replicas, IntOrString surge, IntOrString unavailable) {
  DeploymentView d;
  d.name = "web";
  d.replicas = replicas;
  d.strategy = StrategyType::kRollingUpdate;
  d.max_surge = std::move(surge);
  d.max_unavailable = std::move(unavailable);
  return d;
}

ReplicaSetView rs(std::string name, int32_t replicas, int32_t available, int64_t created = 0) {
  ReplicaSetView v;
  v.name = std::move(name);
  v.uid = v.name + "-uid";
  v.created = Timestamp{1'700'000'000 + created, 0};
  v.replicas = replicas;
  v.status_replicas = replicas;
  v.ready_replicas = available;
  v.available_replicas = available;
  return v;
}

IntOrString i(int64_t v) { return IntOrString::of_int(v); }
IntOrString p(const char* s) { return IntOrString::of_string(s); }

TEST(ScaledValue, IntsAreTakenAsTheyAre) {
  EXPECT_EQ(*scaled_value(i(3), 10, true), 3);
  EXPECT_EQ(*scaled_value(i(0), 10, false), 0);
}

TEST(ScaledValue, PercentsRoundUpOrDownAsAsked) {
  EXPECT_EQ(*scaled_value(p("25%"), 10, true), 3);   // 2.5 up
  EXPECT_EQ(*scaled_value(p("25%"), 10, false), 2);  // 2.5 down
  EXPECT_EQ(*scaled_value(p("25%"), 4, true), 1);
  EXPECT_EQ(*scaled_value(p("25%"), 4, false), 1);
  EXPECT_EQ(*scaled_value(p("25%"), 1, true), 1);
  EXPECT_EQ(*scaled_value(p("25%"), 1, false), 0);
  EXPECT_EQ(*scaled_value(p("100%"), 7, false), 7);
  EXPECT_EQ(*scaled_value(p("0%"), 7, true), 0);
  EXPECT_EQ(*scaled_value(p("33%"), 10, true), 4);
  EXPECT_EQ(*scaled_value(p("33%"), 10, false), 3);
}

TEST(ScaledValue, StringsThatAreNotPercentagesAreRejected) {
  auto r = scaled_value(p("5"), 10, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "invalid type: string is not a percentage");
  EXPECT_FALSE(scaled_value(p("x%"), 10, true).ok());
  EXPECT_FALSE(scaled_value(p(""), 10, true).ok());
}

TEST(IntOrStringFromJson, ReadsNumbersAndStringsAndDefaultsTheRest) {
  json n = 2;
  json s = "10%";
  json b = true;
  EXPECT_EQ(IntOrString::from_json(&n, p("25%")).int_value, 2);
  EXPECT_FALSE(IntOrString::from_json(&n, p("25%")).is_string);
  EXPECT_EQ(IntOrString::from_json(&s, i(1)).string_value, "10%");
  EXPECT_EQ(IntOrString::from_json(&b, i(1)).int_value, 1);
  EXPECT_EQ(IntOrString::from_json(nullptr, p("25%")).string_value, "25%");
}

TEST(Fenceposts, SurgeRoundsUpAndUnavailableRoundsDown) {
  auto f = resolve_fenceposts(p("25%"), p("25%"), 10);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->max_surge, 3);
  EXPECT_EQ(f->max_unavailable, 2);
}

TEST(Fenceposts, BothZeroMakesOneUnavailable) {
  auto f = resolve_fenceposts(p("0%"), p("25%"), 3);  // 0.75 rounds down to 0
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->max_surge, 0);
  EXPECT_EQ(f->max_unavailable, 1);
}

TEST(Fenceposts, MaxUnavailableIsCappedByReplicasAndZeroForNone) {
  EXPECT_EQ(max_unavailable(rolling(3, i(1), i(5))), 3);
  EXPECT_EQ(max_unavailable(rolling(0, i(1), i(1))), 0);
  EXPECT_EQ(min_available(rolling(10, p("25%"), p("25%"))), 8);
}

TEST(Fenceposts, RecreateHasNeitherSurgeNorUnavailability) {
  DeploymentView d = rolling(5, i(2), i(2));
  d.strategy = StrategyType::kRecreate;
  EXPECT_EQ(max_surge(d), 0);
  EXPECT_EQ(max_unavailable(d), 0);
  EXPECT_EQ(min_available(d), 0);
}

TEST(NewReplicaSetReplicas, GrowsWithinReplicasPlusSurge) {
  DeploymentView d = rolling(10, i(3), i(2));
  ReplicaSetView old_rs = rs("old", 10, 10);
  ReplicaSetView new_rs = rs("new", 0, 0, 1);
  EXPECT_EQ(*new_rs_new_replicas(d, {old_rs, new_rs}, new_rs), 3);
  old_rs.replicas = old_rs.status_replicas = 8;
  new_rs.replicas = new_rs.status_replicas = 3;
  EXPECT_EQ(*new_rs_new_replicas(d, {old_rs, new_rs}, new_rs), 5);
  // Never beyond the Deployment's replicas.
  old_rs.replicas = old_rs.status_replicas = 0;
  new_rs.replicas = new_rs.status_replicas = 9;
  EXPECT_EQ(*new_rs_new_replicas(d, {old_rs, new_rs}, new_rs), 10);
}

TEST(NewReplicaSetReplicas, PodsNotYetDeletedCountAgainstTheSurge) {
  DeploymentView d = rolling(10, i(3), i(2));
  // The old ReplicaSet was scaled to 7 but its controller still reports 10 pods.
  ReplicaSetView old_rs = rs("old", 7, 10);
  old_rs.status_replicas = 10;
  ReplicaSetView new_rs = rs("new", 3, 0, 1);
  EXPECT_EQ(*new_rs_new_replicas(d, {old_rs, new_rs}, new_rs), 3);
  old_rs.status_replicas = 7;
  EXPECT_EQ(*new_rs_new_replicas(d, {old_rs, new_rs}, new_rs), 6);
}

TEST(NewReplicaSetReplicas, RecreateTakesEverythingAtOnce) {
  DeploymentView d = rolling(4, i(1), i(1));
  d.strategy = StrategyType::kRecreate;
  ReplicaSetView new_rs = rs("new", 0, 0);
  EXPECT_EQ(*new_rs_new_replicas(d, {new_rs}, new_rs), 4);
}

TEST(PlanNewReplicaSet, ScalesDownANewReplicaSetAboveTheReplicas) {
  DeploymentView d = rolling(3, i(1), i(0));
  ReplicaSetView new_rs = rs("new", 5, 5);
  auto step = plan_new_replica_set(d, {new_rs}, new_rs);
  ASSERT_TRUE(step.ok());
  ASSERT_TRUE(step->has_value());
  EXPECT_EQ(**step, (ScaleStep{"new", 5, 3, "down"}));
}

TEST(PlanNewReplicaSet, NothingWhenAlreadyAtTheRightSizeOrAtTheSurgeLimit) {
  DeploymentView d = rolling(3, i(1), i(0));
  ReplicaSetView new_rs = rs("new", 3, 3);
  EXPECT_FALSE(plan_new_replica_set(d, {new_rs}, new_rs)->has_value());
  ReplicaSetView old_rs = rs("old", 3, 3);
  ReplicaSetView fresh = rs("new", 1, 0, 1);
  EXPECT_FALSE(plan_new_replica_set(d, {old_rs, fresh}, fresh)->has_value());
}

TEST(PlanOldReplicaSets, ScalesDownByMaxUnavailableWhenAllOldPodsAreAvailable) {
  DeploymentView d = rolling(10, i(0), i(2));
  ReplicaSetView old_rs = rs("old", 10, 10);
  ReplicaSetView new_rs = rs("new", 0, 0, 1);
  auto steps = plan_old_replica_sets(d, {old_rs}, new_rs);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0], (ScaleStep{"old", 10, 8, "down"}));
}

TEST(PlanOldReplicaSets, UnhealthyReplicasGoFirstAndDoNotReduceAvailability) {
  DeploymentView d = rolling(10, i(0), i(2));
  ReplicaSetView old_rs = rs("old", 10, 8);  // two pods unavailable
  ReplicaSetView new_rs = rs("new", 0, 0, 1);
  auto steps = plan_old_replica_sets(d, {old_rs}, new_rs);
  // Removing the two unhealthy replicas uses the budget; availability stays at 8.
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0], (ScaleStep{"old", 10, 8, "down"}));
}

TEST(PlanOldReplicaSets, UnavailableNewPodsBlockFurtherScaleDown) {
  // The case from rolling.go: 10 replicas, maxUnavailable 2, maxSurge 3; the new pods
  // crash-loop, so nothing more may go even when an old pod becomes unavailable.
  DeploymentView d = rolling(10, i(3), i(2));
  ReplicaSetView old_rs = rs("old", 8, 7);
  ReplicaSetView new_rs = rs("new", 5, 0, 1);
  EXPECT_TRUE(plan_old_replica_sets(d, {old_rs}, new_rs).empty());
}

TEST(PlanOldReplicaSets, OldestReplicaSetsShrinkFirst) {
  DeploymentView d = rolling(6, i(0), i(3));
  ReplicaSetView older = rs("a-older", 2, 2, 0);
  ReplicaSetView newer = rs("b-newer", 4, 4, 5);
  ReplicaSetView new_rs = rs("new", 0, 0, 10);
  auto steps = plan_old_replica_sets(d, {newer, older}, new_rs);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0], (ScaleStep{"a-older", 2, 0, "down"}));
  EXPECT_EQ(steps[1], (ScaleStep{"b-newer", 4, 3, "down"}));
}

TEST(PlanOldReplicaSets, AvailabilityOfAScaledDownReplicaSetIsNotCountedTwice) {
  // The old ReplicaSet was scaled from 3 to 2, but its status still reports 3 available.
  DeploymentView d = rolling(3, i(1), i(1));
  ReplicaSetView old_rs = rs("old", 2, 3);
  old_rs.status_replicas = 3;
  ReplicaSetView new_rs = rs("new", 1, 1, 1);
  // It will keep at most 2 available, so 3 are available in all and one more may go (the
  // stale status would allow two, leaving a single available pod).
  auto steps = plan_old_replica_sets(d, {old_rs}, new_rs);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0], (ScaleStep{"old", 2, 1, "down"}));
}

TEST(PlanOldReplicaSets, NothingToDoWithoutOldReplicas) {
  DeploymentView d = rolling(3, i(1), i(1));
  ReplicaSetView old_rs = rs("old", 0, 0);
  ReplicaSetView new_rs = rs("new", 3, 3, 1);
  EXPECT_TRUE(plan_old_replica_sets(d, {old_rs}, new_rs).empty());
}

TEST(PlanRecreate, EveryActiveOldReplicaSetGoesToZero) {
  auto steps = plan_recreate_scale_down({rs("a", 2, 2), rs("b", 0, 0), rs("c", 1, 0)});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0], (ScaleStep{"a", 2, 0, "down"}));
  EXPECT_EQ(steps[1], (ScaleStep{"c", 1, 0, "down"}));
}

// The proportional-scaling cases of Kubernetes' sync_test.go (TestScale).
ReplicaSetView annotated(std::string name, int32_t replicas, int64_t created, int32_t old_size) {
  ReplicaSetView v = rs(std::move(name), replicas, replicas, created);
  v.desired_replicas = old_size;
  v.max_replicas = old_size;
  return v;
}

int32_t size_of(const std::vector<ScaleStep>& steps, const std::string& name, int32_t def) {
  for (const auto& s : steps) {
    if (s.name == name) return s.to;
  }
  return def;
}

TEST(PlanScale, ProportionalScaleUp) {
  DeploymentView d = rolling(10, i(0), i(0));
  ReplicaSetView new_rs = annotated("foo-v2", 2, 10, 5);
  std::vector<ReplicaSetView> olds = {annotated("foo-v1", 3, 0, 5)};
  auto steps = plan_scale(d, &new_rs, olds);
  EXPECT_EQ(size_of(steps, "foo-v2", 2), 4);
  EXPECT_EQ(size_of(steps, "foo-v1", 3), 6);
  for (const auto& s : steps) EXPECT_EQ(s.operation, "up");
}

TEST(PlanScale, ProportionalScaleDown) {
  DeploymentView d = rolling(3, i(0), i(0));
  ReplicaSetView new_rs = annotated("foo-v2", 2, 10, 5);
  std::vector<ReplicaSetView> olds = {annotated("foo-v1", 3, 0, 5)};
  auto steps = plan_scale(d, &new_rs, olds);
  EXPECT_EQ(size_of(steps, "foo-v2", 2), 1);
  EXPECT_EQ(size_of(steps, "foo-v1", 3), 2);
}

TEST(PlanScale, ScaleDownToFewerThanTheLargestReplicaSet) {
  DeploymentView d = rolling(4, i(0), i(0));
  ReplicaSetView new_rs = annotated("foo-v2", 8, 10, 9);
  std::vector<ReplicaSetView> olds = {annotated("foo-v1", 1, 0, 9)};
  auto steps = plan_scale(d, &new_rs, olds);
  EXPECT_EQ(size_of(steps, "foo-v2", 8), 4);
  EXPECT_EQ(size_of(steps, "foo-v1", 1), 0);
}

TEST(PlanScale, LeftoversGoToTheLargestAndTiesFavourNewerWhenGrowing) {
  DeploymentView d = rolling(10, i(0), i(0));
  ReplicaSetView new_rs = annotated("foo-v3", 2, 20, 7);
  std::vector<ReplicaSetView> olds = {annotated("foo-v2", 3, 10, 7), annotated("foo-v1", 2, 0, 7)};
  auto steps = plan_scale(d, &new_rs, olds);
  EXPECT_EQ(size_of(steps, "foo-v3", 2), 3);
  EXPECT_EQ(size_of(steps, "foo-v2", 3), 4);
  EXPECT_EQ(size_of(steps, "foo-v1", 2), 3);
}

TEST(PlanScale, TheOnlyActiveReplicaSetTakesEveryReplica) {
  DeploymentView d = rolling(5, i(1), i(1));
  ReplicaSetView new_rs = annotated("new", 3, 10, 3);
  std::vector<ReplicaSetView> olds = {annotated("old", 0, 0, 3)};
  auto steps = plan_scale(d, &new_rs, olds);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0], (ScaleStep{"new", 3, 5, "up"}));
}

TEST(PlanScale, WithNothingActiveTheNewestOldReplicaSetIsScaled) {
  DeploymentView d = rolling(2, i(1), i(1));
  std::vector<ReplicaSetView> olds = {annotated("a", 0, 0, 0), annotated("b", 0, 5, 0)};
  auto steps = plan_scale(d, nullptr, olds);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].name, "b");
  EXPECT_EQ(steps[0].to, 2);
}

TEST(PlanScale, ASaturatedNewReplicaSetSendsOldOnesToZero) {
  DeploymentView d = rolling(3, i(1), i(1));
  ReplicaSetView new_rs = annotated("new", 3, 10, 3);
  std::vector<ReplicaSetView> olds = {annotated("old", 2, 0, 3)};
  EXPECT_TRUE(is_saturated(d, &new_rs));
  auto steps = plan_scale(d, &new_rs, olds);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0], (ScaleStep{"old", 2, 0, "down"}));
}

TEST(ScalingEvent, AnActiveReplicaSetAnnotatedWithAnotherSizeMeansAScale) {
  DeploymentView d = rolling(5, i(1), i(1));
  ReplicaSetView new_rs = annotated("new", 3, 10, 3);
  EXPECT_TRUE(is_scaling_event(d, &new_rs, {}));
  new_rs.desired_replicas = 5;
  EXPECT_FALSE(is_scaling_event(d, &new_rs, {}));
  // Inactive ReplicaSets and ones without the annotation say nothing.
  new_rs.desired_replicas.reset();
  EXPECT_FALSE(is_scaling_event(d, &new_rs, {annotated("old", 0, 0, 9)}));
}

TEST(FindActiveOrLatest, SeveralActiveMeansNone) {
  ReplicaSetView a = rs("a", 1, 1, 0);
  ReplicaSetView b = rs("b", 1, 1, 5);
  EXPECT_EQ(find_active_or_latest(&b, {a}), nullptr);
  EXPECT_EQ(find_active_or_latest(nullptr, {}), nullptr);
  a.replicas = 0;
  EXPECT_EQ(find_active_or_latest(&b, {a}), &b);
}

TEST(Cleanup, DeletesTheLowestRevisionsBeyondTheLimit) {
  DeploymentView d = rolling(3, i(1), i(1));
  d.revision_history_limit = 2;
  std::vector<ReplicaSetView> olds;
  for (int r = 1; r <= 5; ++r) {
    ReplicaSetView v = rs("rev" + std::to_string(r), 0, 0, 10 - r);  // creation order reversed
    v.revision = r;
    olds.push_back(v);
  }
  auto names = plan_cleanup(d, olds);
  EXPECT_EQ(names, (std::vector<std::string>{"rev1", "rev2", "rev3"}));
}

TEST(Cleanup, KeepsReplicaSetsThatStillHavePodsOrAreBusy) {
  DeploymentView d = rolling(3, i(1), i(1));
  d.revision_history_limit = 0;
  ReplicaSetView with_pods = rs("pods", 0, 0);
  with_pods.status_replicas = 1;
  with_pods.revision = 1;
  ReplicaSetView scaled = rs("scaled", 1, 1);
  scaled.revision = 2;
  ReplicaSetView unobserved = rs("unobserved", 0, 0);
  unobserved.generation = 3;
  unobserved.observed_generation = 2;
  unobserved.revision = 3;
  ReplicaSetView deleting = rs("deleting", 0, 0);
  deleting.deleting = true;
  deleting.revision = 4;
  ReplicaSetView idle = rs("idle", 0, 0);
  idle.revision = 5;
  auto names = plan_cleanup(d, {with_pods, scaled, unobserved, deleting, idle});
  EXPECT_EQ(names, (std::vector<std::string>{"idle"}));
}

TEST(Cleanup, NoLimitKeepsEverything) {
  DeploymentView d = rolling(3, i(1), i(1));
  EXPECT_TRUE(plan_cleanup(d, {rs("a", 0, 0), rs("b", 0, 0)}).empty());
  d.revision_history_limit = INT32_MAX;
  EXPECT_TRUE(plan_cleanup(d, {rs("a", 0, 0), rs("b", 0, 0)}).empty());
}

TEST(Revisions, MaxAndLastSkipInvalidOnes) {
  ReplicaSetView a = rs("a", 0, 0);
  a.revision = 3;
  ReplicaSetView b = rs("b", 0, 0);
  b.revision = 7;
  ReplicaSetView c = rs("c", 0, 0);
  c.revision_invalid = true;
  ReplicaSetView d = rs("d", 0, 0);
  d.revision = 5;
  EXPECT_EQ(max_revision({a, b, c, d}), 7);
  EXPECT_EQ(last_revision({a, b, c, d}), 5);
  EXPECT_EQ(last_revision({a}), 0);
  EXPECT_EQ(max_revision({}), 0);
}

TEST(Views, ReadDeploymentsAndReplicaSetsFromJson) {
  json d = json::parse(R"({
    "metadata": {"name": "web", "generation": 4},
    "spec": {"replicas": 6, "strategy": {"type": "RollingUpdate",
             "rollingUpdate": {"maxSurge": 2, "maxUnavailable": "50%"}},
             "revisionHistoryLimit": 3, "progressDeadlineSeconds": 60, "paused": true},
    "status": {"replicas": 5}})");
  DeploymentView dv = DeploymentView::from_json(d);
  EXPECT_EQ(dv.name, "web");
  EXPECT_EQ(dv.generation, 4);
  EXPECT_EQ(dv.replicas, 6);
  EXPECT_EQ(max_surge(dv), 2);
  EXPECT_EQ(max_unavailable(dv), 3);
  EXPECT_EQ(dv.revision_history_limit, 3);
  EXPECT_EQ(dv.progress_deadline_seconds, 60);
  EXPECT_TRUE(dv.paused);
  EXPECT_EQ(dv.status_replicas, 5);

  json r = json::parse(R"({
    "metadata": {"name": "web-abc", "uid": "u1", "generation": 2,
                 "creationTimestamp": "2024-01-02T03:04:05Z",
                 "annotations": {"deployment.kubernetes.io/revision": "4",
                                 "deployment.kubernetes.io/desired-replicas": "6",
                                 "deployment.kubernetes.io/max-replicas": "x"}},
    "spec": {"replicas": 3},
    "status": {"replicas": 4, "readyReplicas": 2, "availableReplicas": 1,
               "observedGeneration": 2,
               "conditions": [{"type": "ReplicaFailure", "status": "True"}]}})");
  ReplicaSetView rv = ReplicaSetView::from_json(r);
  EXPECT_EQ(rv.replicas, 3);
  EXPECT_EQ(rv.status_replicas, 4);
  EXPECT_EQ(rv.pods_upper_bound(), 4);
  EXPECT_EQ(rv.available_lower_bound(), 1);
  EXPECT_EQ(rv.revision, 4);
  EXPECT_EQ(rv.desired_replicas, 6);
  EXPECT_FALSE(rv.max_replicas.has_value());
  EXPECT_EQ(rv.created.seconds, 1704164645);
  EXPECT_EQ(rv.replica_failure["type"], "ReplicaFailure");
}

}  // namespace
}  // namespace skiff::controllers::deployment
