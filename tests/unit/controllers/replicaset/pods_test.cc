// What the ReplicaSet controller decides without the API: pod readiness and availability,
// the order in which pods are deleted, pods made from templates, controller references,
// expectations, slow-start batches and the ReplicaSet's status.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "controllers/common/batch.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/expectations.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_util.h"
#include "controllers/replicaset/replica_set_controller.h"

namespace skiff::controllers {
namespace {

using client::ObjectPtr;
using nlohmann::json;
namespace cc = ::skiff::controllers::common;

constexpr int64_t kNow = 1'700'000'000;
TimePoint at(int64_t seconds) { return TimePoint(std::chrono::seconds(seconds)); }
std::string ts(int64_t seconds) { return format_rfc3339(at(seconds)); }

// A pod; ready_since < 0 means not ready.
json pod(const std::string& name, const std::string& node, const std::string& phase,
         int64_t ready_since, int64_t created = kNow - 1000) {
  json p = {{"metadata",
             {{"name", name},
              {"namespace", "ns"},
              {"uid", "uid-" + name},
              {"creationTimestamp", ts(created)},
              {"labels", {{"app", "web"}}}}},
            {"spec", json::object()},
            {"status", {{"phase", phase}}}};
  if (!node.empty()) p["spec"]["nodeName"] = node;
  if (ready_since >= 0) {
    p["status"]["conditions"] = {
        {{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", ts(ready_since)}}};
  } else {
    p["status"]["conditions"] = {{{"type", "Ready"}, {"status", "False"}}};
  }
  return p;
}

ObjectPtr ptr(json j) { return std::make_shared<const json>(std::move(j)); }

std::vector<std::string> names(const std::vector<ObjectPtr>& pods) {
  std::vector<std::string> out;
  for (const auto& p : pods) out.push_back(cc::name_of(*p));
  return out;
}

TEST(PodState, ActiveReadyAvailable) {
  json p = pod("a", "n1", "Running", kNow - 30);
  EXPECT_TRUE(cc::is_pod_active(p));
  EXPECT_TRUE(cc::is_pod_ready(p));
  EXPECT_TRUE(cc::is_pod_available(p, 0, at(kNow)));
  EXPECT_TRUE(cc::is_pod_available(p, 10, at(kNow)));
  EXPECT_FALSE(cc::is_pod_available(p, 30, at(kNow)));  // exactly minReadySeconds: not yet
  EXPECT_FALSE(cc::is_pod_available(p, 60, at(kNow)));

  json unready = pod("b", "n1", "Running", -1);
  EXPECT_FALSE(cc::is_pod_ready(unready));
  EXPECT_FALSE(cc::is_pod_available(unready, 0, at(kNow)));

  json done = pod("c", "n1", "Succeeded", -1);
  EXPECT_FALSE(cc::is_pod_active(done));
  json deleting = pod("d", "n1", "Running", kNow);
  deleting["metadata"]["deletionTimestamp"] = ts(kNow);
  EXPECT_FALSE(cc::is_pod_active(deleting));
  EXPECT_EQ(names(cc::filter_active_pods({ptr(p), ptr(unready), ptr(done), ptr(deleting)})),
            (std::vector<std::string>{"a", "b"}));
}

TEST(PodsToDelete, KubernetesOrder) {
  std::vector<ObjectPtr> pods = {
      ptr(pod("running-old", "n1", "Running", kNow - 100000, kNow - 200000)),
      ptr(pod("unscheduled", "", "Pending", -1)),
      ptr(pod("pending", "n2", "Pending", -1)),
      ptr(pod("unknown", "n3", "Unknown", -1)),
      ptr(pod("running-unready", "n4", "Running", -1)),
      ptr(pod("running-new", "n5", "Running", kNow - 10, kNow - 20)),
  };
  auto victims = cc::pods_to_delete(pods, pods, 6 - 1, at(kNow));
  EXPECT_EQ(names(victims), (std::vector<std::string>{"unscheduled", "pending", "unknown",
                                                      "running-unready", "running-new"}));
}

TEST(PodsToDelete, DeletionCostThenDoubledUpNodes) {
  json cheap = pod("cheap", "n1", "Running", kNow - 1000);
  cheap["metadata"]["annotations"] = {{"controller.kubernetes.io/pod-deletion-cost", "-5"}};
  json dear = pod("dear", "n2", "Running", kNow - 1000);
  dear["metadata"]["annotations"] = {{"controller.kubernetes.io/pod-deletion-cost", "100"}};
  json crowded = pod("crowded", "n3", "Running", kNow - 1000);
  json alone = pod("alone", "n4", "Running", kNow - 1000);
  json neighbour = pod("neighbour", "n3", "Running", kNow - 1000);
  std::vector<ObjectPtr> pods = {ptr(dear), ptr(alone), ptr(crowded), ptr(cheap)};
  std::vector<ObjectPtr> related = pods;
  related.push_back(ptr(neighbour));
  auto victims = cc::pods_to_delete(pods, related, 3, at(kNow));
  EXPECT_EQ(names(victims), (std::vector<std::string>{"cheap", "crowded", "alone"}));
  EXPECT_EQ(cc::pod_deletion_cost(cheap), -5);
  json bad = cheap;
  bad["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"] = "+5";
  EXPECT_EQ(cc::pod_deletion_cost(bad), 0);
}

TEST(PodsToDelete, RestartsAndAgeOnALogScale) {
  // With the same ready time, restarts decide.
  json a = pod("a", "n1", "Running", kNow - 100);
  json b = pod("b", "n2", "Running", kNow - 100);
  b["status"]["containerStatuses"] = {{{"name", "c"}, {"restartCount", 3}}};
  auto victims = cc::pods_to_delete({ptr(a), ptr(b)}, {}, 1, at(kNow));
  EXPECT_EQ(names(victims), (std::vector<std::string>{"b"}));
  // Far apart, the more recently ready one goes first whatever its restarts.
  json c = pod("c", "n3", "Running", kNow - 100000);
  c["status"]["containerStatuses"] = {{{"name", "c"}, {"restartCount", 9}}};
  victims = cc::pods_to_delete({ptr(c), ptr(a)}, {}, 1, at(kNow));
  EXPECT_EQ(names(victims), (std::vector<std::string>{"a"}));
  // Ready times in the same power-of-two bucket tie, and the uid breaks the tie.
  json d = pod("d", "n4", "Running", kNow - 110);
  victims = cc::pods_to_delete({ptr(d), ptr(a)}, {}, 1, at(kNow));
  EXPECT_EQ(names(victims), (std::vector<std::string>{"a"}));
}

TEST(PodsToDelete, AllOfThemWhenDiffCoversEveryPod) {
  std::vector<ObjectPtr> pods = {ptr(pod("a", "n", "Running", kNow)),
                                 ptr(pod("b", "n", "Running", kNow))};
  EXPECT_EQ(cc::pods_to_delete(pods, pods, 2, at(kNow)).size(), 2u);
  EXPECT_EQ(cc::pods_to_delete(pods, pods, 5, at(kNow)).size(), 2u);
}

TEST(PodFromTemplate, CopiesTheTemplateAndOwnsThePod) {
  json rs = {{"metadata", {{"name", "web-abc"}, {"namespace", "ns"}, {"uid", "rs-uid"}}}};
  json tmpl = {{"metadata",
                {{"labels", {{"app", "web"}, {"pod-template-hash", "abc"}}},
                 {"annotations", {{"a", "b"}}},
                 {"finalizers", {"f"}}}},
               {"spec", {{"containers", {{{"name", "c"}, {"image", "nginx"}}}}}}};
  cc::OwnerReference ref = cc::new_controller_ref(rs, "apps/v1", "ReplicaSet");
  auto p = cc::pod_from_template(tmpl, rs, ref);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)["metadata"]["generateName"], "web-abc-");
  EXPECT_EQ((*p)["metadata"]["labels"], tmpl["metadata"]["labels"]);
  EXPECT_EQ((*p)["metadata"]["annotations"], tmpl["metadata"]["annotations"]);
  EXPECT_EQ((*p)["metadata"]["finalizers"], tmpl["metadata"]["finalizers"]);
  EXPECT_EQ((*p)["spec"], tmpl["spec"]);
  EXPECT_EQ((*p)["metadata"]["ownerReferences"],
            json::parse(R"([{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-abc",
                            "uid":"rs-uid","controller":true,"blockOwnerDeletion":true}])"));
  EXPECT_TRUE(cc::is_controlled_by(*p, "rs-uid"));
  EXPECT_FALSE(cc::is_controlled_by(*p, "other"));

  json unlabeled = tmpl;
  unlabeled["metadata"].erase("labels");
  auto refused = cc::pod_from_template(unlabeled, rs, ref);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "unable to create pods, no labels");
}

TEST(ControllerRef, PatchesCarryTheObjectUid) {
  cc::OwnerReference ref{"apps/v1", "ReplicaSet", "web", "u1", true, true};
  EXPECT_EQ(json::parse(cc::adopt_patch(ref, "p1")),
            json::parse(R"({"metadata":{"ownerReferences":[{"apiVersion":"apps/v1",
              "kind":"ReplicaSet","name":"web","uid":"u1","controller":true,
              "blockOwnerDeletion":true}],"uid":"p1"}})"));
  EXPECT_EQ(json::parse(cc::release_patch("u1", "p1")),
            json::parse(R"({"metadata":{"ownerReferences":[{"$patch":"delete","uid":"u1"}],
              "uid":"p1"}})"));
  json owned = {{"metadata",
                 {{"ownerReferences",
                   {{{"uid", "x"}, {"kind", "Node"}},
                    {{"uid", "u1"}, {"kind", "ReplicaSet"}, {"controller", true}}}}}}};
  auto got = cc::controller_of(owned);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->uid, "u1");
  EXPECT_EQ(cc::controller_uid_index(owned), (std::vector<std::string>{"u1"}));
  EXPECT_TRUE(cc::controller_uid_index(json::object()).empty());
}

TEST(Expectations, PendingUntilObservedOrExpired) {
  FakeClock clock(at(kNow));
  cc::ControllerExpectations e(clock);
  EXPECT_TRUE(e.satisfied("ns/rs"));  // never set
  e.expect_creations("ns/rs", 2);
  EXPECT_FALSE(e.satisfied("ns/rs"));
  e.creation_observed("ns/rs");
  EXPECT_FALSE(e.satisfied("ns/rs"));
  e.creation_observed("ns/rs");
  EXPECT_TRUE(e.satisfied("ns/rs"));

  e.expect_deletions("ns/rs", {"ns/a", "ns/b"});
  e.deletion_observed("ns/rs", "ns/other");  // not expected: does not count
  e.deletion_observed("ns/rs", "ns/a");
  e.deletion_observed("ns/rs", "ns/a");  // twice counts once
  int adds = -1;
  int deletes = -1;
  ASSERT_TRUE(e.pending("ns/rs", &adds, &deletes));
  EXPECT_EQ(adds, 0);
  EXPECT_EQ(deletes, 1);
  EXPECT_FALSE(e.satisfied("ns/rs"));
  clock.advance(cc::kExpectationsTimeout + std::chrono::seconds(1));
  EXPECT_TRUE(e.satisfied("ns/rs"));  // a lost event does not block forever

  e.delete_expectations("ns/rs");
  EXPECT_FALSE(e.pending("ns/rs", nullptr, nullptr));
}

TEST(SlowStartBatch, DoublesAndStopsAfterAFailedBatch) {
  std::atomic<int> calls{0};
  auto result = cc::slow_start_batch(10, 1, [&] {
    int n = ++calls;
    return n == 5 ? Status::Forbidden("quota") : Status::Ok();
  });
  // Batches of 1, 2, 4: the third has the failure, so the fourth never starts.
  EXPECT_EQ(calls.load(), 7);
  EXPECT_EQ(result.successes, 6);
  EXPECT_EQ(result.first_error.code(), StatusCode::kForbidden);

  calls = 0;
  result = cc::slow_start_batch(10, 1, [&] {
    ++calls;
    return Status::Ok();
  });
  EXPECT_EQ(calls.load(), 10);
  EXPECT_EQ(result.successes, 10);
  EXPECT_TRUE(result.first_error.ok());
  EXPECT_EQ(cc::slow_start_batch(0, 1, [] { return Status::Ok(); }).successes, 0);
}

TEST(ParallelFor, RunsEveryIndexOnce) {
  std::mutex mu;
  std::multiset<int> seen;
  Status s = cc::parallel_for(50, [&](int i) {
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(i);
    return i == 7 ? Status::NotFound("x") : Status::Ok();
  });
  EXPECT_EQ(seen.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(seen.count(i), 1u);
  EXPECT_TRUE(s.is_not_found());
}

json replica_set(int replicas, int min_ready = 0) {
  return {{"metadata", {{"name", "web"}, {"namespace", "ns"}, {"generation", 3}}},
          {"spec",
           {{"replicas", replicas},
            {"minReadySeconds", min_ready},
            {"template", {{"metadata", {{"labels", {{"app", "web"}, {"tier", "front"}}}}}}}}},
          {"status", {{"replicas", 0}, {"observedGeneration", 2}}}};
}

TEST(ReplicaSetStatus, CountsLabeledReadyAndAvailablePods) {
  json full = pod("a", "n", "Running", kNow - 100);
  full["metadata"]["labels"]["tier"] = "front";
  json partial = pod("b", "n", "Running", kNow - 5);  // lacks the tier label
  json unready = pod("c", "n", "Pending", -1);
  unready["metadata"]["labels"]["tier"] = "front";
  json rs = replica_set(3, 10);
  json status = replicaset::calculate_status(rs, {ptr(full), ptr(partial), ptr(unready)},
                                             Status::Ok(), at(kNow));
  EXPECT_EQ(status["replicas"], 3);
  EXPECT_EQ(status["fullyLabeledReplicas"], 2);
  EXPECT_EQ(status["readyReplicas"], 2);
  EXPECT_EQ(status["availableReplicas"], 1);  // b has been ready for 5s of 10
  EXPECT_TRUE(replicaset::status_needs_update(rs, status));
}

TEST(ReplicaSetStatus, ReplicaFailureWhileWritesFail) {
  json rs = replica_set(2);
  json status = replicaset::calculate_status(rs, {}, Status::Forbidden("exceeded quota"), at(kNow));
  ASSERT_TRUE(status.contains("conditions"));
  EXPECT_EQ(status["conditions"][0]["type"], "ReplicaFailure");
  EXPECT_EQ(status["conditions"][0]["reason"], "FailedCreate");
  EXPECT_EQ(status["conditions"][0]["message"], "exceeded quota");
  EXPECT_EQ(status["replicas"], 0);
  EXPECT_FALSE(status.contains("readyReplicas"));

  rs["status"] = status;
  json cleared = replicaset::calculate_status(rs, {}, Status::Ok(), at(kNow));
  EXPECT_FALSE(cleared.contains("conditions"));
}

TEST(ReplicaSetStatus, NoWriteWhenNothingChanged) {
  json rs = replica_set(0);
  rs["status"]["observedGeneration"] = 3;
  json status = replicaset::calculate_status(rs, {}, Status::Ok(), at(kNow));
  EXPECT_FALSE(replicaset::status_needs_update(rs, status));
  rs["metadata"]["generation"] = 4;  // a spec change must be acknowledged
  EXPECT_TRUE(replicaset::status_needs_update(rs, status));
}

}  // namespace
}  // namespace skiff::controllers
