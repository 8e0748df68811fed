// The ReplicaSet controller against a real API server, with a fake kubelet.
#include "controllers/replicaset/replica_set_controller.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "unit/controllers/replicaset/workload_harness.h"

namespace skiff::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using namespace testing_support;
using ::skiff::testing::eventually;

json replica_set(const std::string& name, int replicas, int min_ready_seconds = 0) {
  json rs = {
      {"apiVersion", "apps/v1"},
      {"kind", "ReplicaSet"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"replicas", replicas},
        {"selector", {{"matchLabels", {{"app", name}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", name}, {"tier", "web"}}}}},
          {"spec", {{"containers", {{{"name", "c"}, {"image", "registry.local/web:1"}}}}}}}}}}};
  if (min_ready_seconds > 0) rs["spec"]["minReadySeconds"] = min_ready_seconds;
  return rs;
}

class ReplicaSetControllerTest : public ::testing::Test {
 protected:
  ReplicaSetControllerTest() : h_({"replicaset"}) {}

  void SetUp() override { ASSERT_TRUE(h_.ok()); }

  json create(const json& rs) {
    auto r = h_.client().create(h_.replica_sets(), rs);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? **r : json();
  }

  // Pods (alive) controlled by the ReplicaSet with uid.
  std::vector<json> owned_pods(const std::string& uid) {
    std::vector<json> out;
    for (json& p : h_.live_pods()) {
      const json* refs = member(p, {"metadata", "ownerReferences"});
      if (refs == nullptr) continue;
      for (const json& r : *refs) {
        if (r.value("uid", "") == uid && r.value("controller", false)) out.push_back(p);
      }
    }
    return out;
  }

  bool status_converged(const std::string& name, int replicas, int ready, int available) {
    json rs = h_.get(h_.replica_sets(), name);
    return num(rs, {"status", "observedGeneration"}) == num(rs, {"metadata", "generation"}) &&
           num(rs, {"status", "replicas"}) == replicas &&
           num(rs, {"status", "readyReplicas"}) == ready &&
           num(rs, {"status", "availableReplicas"}) == available;
  }

  WorkloadHarness h_;
};

TEST_F(ReplicaSetControllerTest, CreatesPodsWithControllerReferencesAndReportsStatus) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json rs = create(replica_set("web", 3));
  std::string uid = str(rs, {"metadata", "uid"});
  ASSERT_TRUE(eventually([&] { return owned_pods(uid).size() == 3; }));
  for (const json& p : owned_pods(uid)) {
    EXPECT_EQ(str(p, {"metadata", "generateName"}), "web-");
    EXPECT_EQ(str(p, {"metadata", "name"}).rfind("web-", 0), 0u);
    EXPECT_EQ(str(p, {"metadata", "labels", "app"}), "web");
    EXPECT_EQ(str(p, {"metadata", "labels", "tier"}), "web");
    const json& ref = p["metadata"]["ownerReferences"][0];
    EXPECT_EQ(ref["apiVersion"], "apps/v1");
    EXPECT_EQ(ref["kind"], "ReplicaSet");
    EXPECT_EQ(ref["name"], "web");
    EXPECT_EQ(ref["controller"], true);
    EXPECT_EQ(ref["blockOwnerDeletion"], true);
    EXPECT_EQ(p["spec"]["containers"][0]["image"], "registry.local/web:1");
  }
  ASSERT_TRUE(eventually([&] { return status_converged("web", 3, 3, 3); }))
      << h_.get(h_.replica_sets(), "web")["status"].dump();
  json status = h_.get(h_.replica_sets(), "web")["status"];
  EXPECT_EQ(status["fullyLabeledReplicas"], 3);
  EXPECT_TRUE(eventually([&] { return h_.events("web", "SuccessfulCreate").size() == 3; }));
  for (const json& e : h_.events("web", "SuccessfulCreate")) {
    EXPECT_EQ(e["message"].get<std::string>().rfind("Created pod: web-", 0), 0u);
    EXPECT_EQ(str(e, {"source", "component"}), "replicaset-controller");
  }
}

TEST_F(ReplicaSetControllerTest, ReplacesADeletedPod) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json rs = create(replica_set("web", 2));
  std::string uid = str(rs, {"metadata", "uid"});
  ASSERT_TRUE(eventually([&] { return owned_pods(uid).size() == 2; }));
  std::string victim = str(owned_pods(uid)[0], {"metadata", "name"});
  ASSERT_TRUE(h_.client().remove(h_.pods(), victim).ok());
  ASSERT_TRUE(eventually([&] {
    auto pods = owned_pods(uid);
    if (pods.size() != 2) return false;
    for (const json& p : pods) {
      if (str(p, {"metadata", "name"}) == victim) return false;
    }
    return true;
  }));
  EXPECT_TRUE(eventually([&] { return status_converged("web", 2, 2, 2); }));
}

TEST_F(ReplicaSetControllerTest, ScalingDownDeletesNotReadyPodsFirst) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  kubelet.hold(true);
  json rs = create(replica_set("web", 3));
  std::string uid = str(rs, {"metadata", "uid"});
  ASSERT_TRUE(eventually([&] { return owned_pods(uid).size() == 3; }));
  std::vector<json> pods = owned_pods(uid);
  std::set<std::string> ready;
  for (size_t i = 0; i < 2; ++i) {
    std::string name = str(pods[i], {"metadata", "name"});
    ASSERT_TRUE(kubelet.make_ready(name).ok());
    ready.insert(name);
  }
  ASSERT_TRUE(eventually([&] { return status_converged("web", 3, 2, 2); }));
  ASSERT_TRUE(h_.merge_patch(h_.replica_sets(), "web", {{"spec", {{"replicas", 2}}}}).ok());
  ASSERT_TRUE(eventually([&] { return owned_pods(uid).size() == 2; }));
  for (const json& p : owned_pods(uid)) {
    EXPECT_EQ(ready.count(str(p, {"metadata", "name"})), 1u) << "a ready pod was deleted";
  }
  EXPECT_TRUE(eventually([&] { return status_converged("web", 2, 2, 2); }));
  EXPECT_TRUE(eventually([&] { return h_.events("web", "SuccessfulDelete").size() == 1; }));
}

TEST_F(ReplicaSetControllerTest, AdoptsMatchingOrphansAndReleasesPodsItNoLongerSelects) {
  json orphan = {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"metadata", {{"name", "stray"}, {"labels", {{"app", "web"}}}}},
                 {"spec", {{"containers", {{{"name", "c"}, {"image", "registry.local/web:0"}}}}}}};
  ASSERT_TRUE(h_.client().create(h_.pods(), orphan).ok());
  json rs = create(replica_set("web", 2));
  std::string uid = str(rs, {"metadata", "uid"});
  ASSERT_TRUE(eventually([&] { return owned_pods(uid).size() == 2; }));
  // The orphan counts: only one pod was created.
  bool adopted = false;
  for (const json& p : owned_pods(uid)) {
    if (str(p, {"metadata", "name"}) == "stray") adopted = true;
  }
  EXPECT_TRUE(adopted);
  EXPECT_EQ(h_.live_pods().size(), 2u);

  // Relabeled out of the selector: released, and replaced.
  ASSERT_TRUE(
      h_.merge_patch(h_.pods(), "stray", {{"metadata", {{"labels", {{"app", "gone"}}}}}}).ok());
  ASSERT_TRUE(eventually([&] {
    json p = h_.get(h_.pods(), "stray");
    const json* refs = member(p, {"metadata", "ownerReferences"});
    return refs == nullptr || refs->empty();
  }));
  EXPECT_TRUE(eventually([&] { return owned_pods(uid).size() == 2; }));
  EXPECT_EQ(h_.live_pods().size(), 3u);
}

TEST_F(ReplicaSetControllerTest, ManyReplicasAtOnceNeverOvershoot) {
  PodRecorder recorder(h_.client(), h_.ns());
  json rs = create(replica_set("web", 20));
  std::string uid = str(rs, {"metadata", "uid"});
  ASSERT_TRUE(eventually([&] { return owned_pods(uid).size() == 20; }));
  ASSERT_TRUE(eventually([&] { return status_converged("web", 20, 0, 0); }));
  ASSERT_FALSE(recorder.closed());
  int most = 0;
  PodHistory::replay(recorder.events(), 0, [&](const PodHistory::Point& p, const auto&) {
    most = std::max(most, p.alive);
  });
  EXPECT_EQ(most, 20);
  // Scaling to zero removes them all.
  ASSERT_TRUE(h_.merge_patch(h_.replica_sets(), "web", {{"spec", {{"replicas", 0}}}}).ok());
  EXPECT_TRUE(eventually([&] { return owned_pods(uid).empty(); }));
  EXPECT_TRUE(eventually([&] { return status_converged("web", 0, 0, 0); }));
}

TEST_F(ReplicaSetControllerTest, PodsBecomeAvailableAfterMinReadySeconds) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  create(replica_set("web", 2, 1));
  ASSERT_TRUE(eventually([&] {
    json rs = h_.get(h_.replica_sets(), "web");
    return num(rs, {"status", "readyReplicas"}) == 2;
  }));
  // Ready, but not yet for a whole second: not available; then available without any
  // further pod event.
  EXPECT_TRUE(eventually([&] { return status_converged("web", 2, 2, 2); }, 10s));
}

}  // namespace
}  // namespace skiff::controllers
