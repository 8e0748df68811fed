// The Deployment and ReplicaSet controllers together against a real API server, with a fake
// kubelet: rollouts, scaling, rollback, pause, Recreate, history cleanup and deadlines.
#include "controllers/deployment/deployment_controller.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "controllers/common/pod_template_hash.h"
#include "unit/controllers/replicaset/workload_harness.h"

namespace skiff::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using namespace testing_support;
using ::skiff::testing::eventually;

constexpr char kHashLabel[] = "pod-template-hash";

json deployment(const std::string& name, int replicas, const std::string& image,
                json strategy = {{"type", "RollingUpdate"},
                                 {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 1}}}}) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"strategy", std::move(strategy)},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}}}}};
}

json image_patch(const std::string& image) {
  return {
      {"spec", {{"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}}}}};
}

class DeploymentControllerTest : public ::testing::Test {
 protected:
  DeploymentControllerTest() : h_({"deployment", "replicaset"}) {}

  void SetUp() override { ASSERT_TRUE(h_.ok()); }

  json create(const json& d) {
    auto r = h_.client().create(h_.deployments(), d);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? **r : json();
  }

  json get(const std::string& name) { return h_.get(h_.deployments(), name); }

  // What `kubectl rollout status` waits for.
  bool rolled_out(const std::string& name) {
    json d = get(name);
    if (!d.is_object()) return false;
    int64_t replicas = num(d, {"spec", "replicas"});
    return num(d, {"status", "observedGeneration"}) >= num(d, {"metadata", "generation"}) &&
           num(d, {"status", "updatedReplicas"}) == replicas &&
           num(d, {"status", "replicas"}) == replicas &&
           num(d, {"status", "availableReplicas"}) >= replicas;
  }

  // The ReplicaSets the Deployment controls.
  std::vector<json> replica_sets(const json& d) {
    std::vector<json> out;
    std::string uid = str(d, {"metadata", "uid"});
    for (json& rs : h_.list(h_.replica_sets())) {
      const json* refs = member(rs, {"metadata", "ownerReferences"});
      if (refs == nullptr) continue;
      for (const json& r : *refs) {
        if (r.value("uid", "") == uid && r.value("controller", false)) out.push_back(rs);
      }
    }
    return out;
  }

  json replica_set_with_image(const json& d, const std::string& image) {
    for (json& rs : replica_sets(d)) {
      if (rs["spec"]["template"]["spec"]["containers"][0]["image"] == image) return rs;
    }
    return json();
  }

  // Live pods all running `image`, `count` of them, all ready.
  bool pods_are(const std::string& image, size_t count) {
    auto pods = h_.live_pods();
    if (pods.size() != count) return false;
    for (const json& p : pods) {
      if (p["spec"]["containers"][0]["image"] != image || !pod_ready(p)) return false;
    }
    return true;
  }

  std::string condition_reason(const json& d, const std::string& type) {
    const json* conditions = member(d, {"status", "conditions"});
    if (conditions == nullptr) return "";
    for (const json& c : *conditions) {
      if (c.value("type", "") == type) return c.value("reason", "");
    }
    return "";
  }

  std::vector<std::string> scaling_messages(const std::string& name) {
    std::vector<std::string> out;
    for (const json& e : h_.events(name, "ScalingReplicaSet")) {
      out.push_back(e.value("message", ""));
    }
    return out;
  }

  bool has_message(const std::string& name, const std::string& message) {
    for (const auto& m : scaling_messages(name)) {
      if (m == message) return true;
    }
    return false;
  }

  // Waits until the recorder's latest state has `alive` pods, all ready, and returns the
  // number of events seen so far.
  size_t settled(PodRecorder& recorder, int alive) {
    size_t seen = 0;
    EXPECT_TRUE(eventually([&] {
      auto events = recorder.events();
      PodHistory::Point last{0, -1, -1};
      PodHistory::replay(events, events.empty() ? 0 : events.size() - 1,
                         [&](const PodHistory::Point& p, const auto&) { last = p; });
      seen = events.size();
      return last.alive == alive && last.ready == alive;
    }));
    return seen;
  }

  WorkloadHarness h_;
};

TEST_F(DeploymentControllerTest, CreatesAReplicaSetAndPodsWithOwnerReferences) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json d = create(deployment("web", 3, "registry.local/web:1"));
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); })) << get("web")["status"].dump();

  d = get("web");
  auto rss = replica_sets(d);
  ASSERT_EQ(rss.size(), 1u);
  const json& rs = rss[0];
  std::string hash = str(rs, {"metadata", "labels", kHashLabel});
  ASSERT_FALSE(hash.empty());
  for (char c : hash) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << hash;
  EXPECT_EQ(str(rs, {"metadata", "name"}), "web-" + hash);
  EXPECT_EQ(str(rs, {"spec", "selector", "matchLabels", kHashLabel}), hash);
  EXPECT_EQ(str(rs, {"spec", "template", "metadata", "labels", kHashLabel}), hash);
  EXPECT_EQ(num(rs, {"spec", "replicas"}), 3);
  const json& ref = rs["metadata"]["ownerReferences"][0];
  EXPECT_EQ(ref["kind"], "Deployment");
  EXPECT_EQ(ref["name"], "web");
  EXPECT_EQ(ref["uid"], d["metadata"]["uid"]);
  EXPECT_EQ(ref["controller"], true);
  EXPECT_EQ(ref["blockOwnerDeletion"], true);
  EXPECT_EQ(str(rs, {"metadata", "annotations", "deployment.kubernetes.io/revision"}), "1");
  EXPECT_EQ(str(rs, {"metadata", "annotations", "deployment.kubernetes.io/desired-replicas"}), "3");
  EXPECT_EQ(str(rs, {"metadata", "annotations", "deployment.kubernetes.io/max-replicas"}), "4");
  EXPECT_EQ(str(d, {"metadata", "annotations", "deployment.kubernetes.io/revision"}), "1");

  auto pods = h_.live_pods();
  ASSERT_EQ(pods.size(), 3u);
  for (const json& p : pods) {
    EXPECT_EQ(str(p, {"metadata", "generateName"}), "web-" + hash + "-");
    EXPECT_EQ(str(p, {"metadata", "labels", kHashLabel}), hash);
    EXPECT_EQ(p["metadata"]["ownerReferences"][0]["uid"], rs["metadata"]["uid"]);
    EXPECT_EQ(p["metadata"]["ownerReferences"][0]["controller"], true);
  }

  // The status `kubectl rollout status` and `kubectl wait --for=condition=Available` read.
  ASSERT_TRUE(eventually([&] {
    json cur = get("web");
    return num(cur, {"status", "readyReplicas"}) == 3 &&
           condition_reason(cur, "Progressing") == "NewReplicaSetAvailable";
  })) << get("web")["status"].dump();
  d = get("web");
  EXPECT_EQ(num(d, {"status", "unavailableReplicas"}), 0);
  EXPECT_EQ(condition_reason(d, "Available"), "MinimumReplicasAvailable");
  EXPECT_TRUE(eventually(
      [&] { return has_message("web", "Scaled up replica set web-" + hash + " from 0 to 3"); }));
  for (const json& e : h_.events("web", "ScalingReplicaSet")) {
    EXPECT_EQ(str(e, {"source", "component"}), "deployment-controller");
  }
}

TEST_F(DeploymentControllerTest, ScalesUpAndDown) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  create(deployment("web", 2, "registry.local/web:1"));
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:1", 2); }));
  std::string rs = str(replica_sets(get("web"))[0], {"metadata", "name"});

  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", {{"spec", {{"replicas", 5}}}}).ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:1", 5); }));
  EXPECT_TRUE(eventually(
      [&] { return has_message("web", "Scaled up replica set " + rs + " from 2 to 5"); }));

  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", {{"spec", {{"replicas", 1}}}}).ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:1", 1); }));
  EXPECT_TRUE(eventually(
      [&] { return has_message("web", "Scaled down replica set " + rs + " from 5 to 1"); }));
  EXPECT_EQ(replica_sets(get("web")).size(), 1u);
  json d = get("web");
  EXPECT_EQ(str(replica_sets(d)[0],
                {"metadata", "annotations", "deployment.kubernetes.io/desired-replicas"}),
            "1");
}

TEST_F(DeploymentControllerTest, RollingUpdateStaysWithinSurgeAndUnavailability) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  PodRecorder recorder(h_.client(), h_.ns());
  const int replicas = 4;  // maxSurge 1, maxUnavailable 1
  create(deployment("web", replicas, "registry.local/web:1"));
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); }));
  size_t from = settled(recorder, replicas);
  json before = get("web");
  json old_rs = replica_sets(before)[0];

  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", image_patch("registry.local/web:2")).ok());
  ASSERT_TRUE(eventually([&] {
    return rolled_out("web") && pods_are("registry.local/web:2", replicas);
  })) << get("web")["status"].dump();
  settled(recorder, replicas);
  ASSERT_FALSE(recorder.closed());

  int most_alive = 0;
  int least_ready = replicas;
  PodHistory::replay(recorder.events(), from, [&](const PodHistory::Point& p, const auto&) {
    most_alive = std::max(most_alive, p.alive);
    least_ready = std::min(least_ready, p.ready);
  });
  EXPECT_LE(most_alive, replicas + 1) << "more pods than replicas + maxSurge";
  EXPECT_GE(least_ready, replicas - 1) << "fewer ready pods than replicas - maxUnavailable";

  json d = get("web");
  json new_rs = replica_set_with_image(d, "registry.local/web:2");
  ASSERT_TRUE(new_rs.is_object());
  EXPECT_EQ(str(new_rs, {"metadata", "annotations", "deployment.kubernetes.io/revision"}), "2");
  EXPECT_EQ(str(d, {"metadata", "annotations", "deployment.kubernetes.io/revision"}), "2");
  json old_now = h_.get(h_.replica_sets(), str(old_rs, {"metadata", "name"}));
  EXPECT_EQ(num(old_now, {"spec", "replicas"}), 0);  // kept for history, scaled to zero
  EXPECT_EQ(condition_reason(d, "Progressing"), "NewReplicaSetAvailable");
  std::string new_name = str(new_rs, {"metadata", "name"});
  std::string old_name = str(old_rs, {"metadata", "name"});
  auto scaled_old_to_zero = [&] {
    std::string prefix = "Scaled down replica set " + old_name + " from ";
    for (const auto& m : scaling_messages("web")) {
      if (m.rfind(prefix, 0) == 0 && m.size() > 5 && m.substr(m.size() - 5) == " to 0") return true;
    }
    return false;
  };
  EXPECT_TRUE(eventually([&] {
    return has_message("web", "Scaled up replica set " + new_name + " from 0 to 1") &&
           has_message("web", "Scaled down replica set " + old_name + " from 4 to 3") &&
           scaled_old_to_zero();
  })) << ::testing::PrintToString(scaling_messages("web"));
}

TEST_F(DeploymentControllerTest, RollingUpdateWithPercentagesAndNoUnavailability) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  PodRecorder recorder(h_.client(), h_.ns());
  const int replicas = 3;  // maxSurge 50% -> 2 (rounded up), maxUnavailable 0
  create(deployment("web", replicas, "registry.local/web:1",
                    {{"type", "RollingUpdate"},
                     {"rollingUpdate", {{"maxSurge", "50%"}, {"maxUnavailable", 0}}}}));
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); }));
  size_t from = settled(recorder, replicas);
  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", image_patch("registry.local/web:2")).ok());
  ASSERT_TRUE(
      eventually([&] { return rolled_out("web") && pods_are("registry.local/web:2", replicas); }));
  settled(recorder, replicas);
  int most_alive = 0;
  int least_ready = replicas;
  PodHistory::replay(recorder.events(), from, [&](const PodHistory::Point& p, const auto&) {
    most_alive = std::max(most_alive, p.alive);
    least_ready = std::min(least_ready, p.ready);
  });
  EXPECT_LE(most_alive, replicas + 2);
  EXPECT_GE(least_ready, replicas);
}

// What `kubectl rollout undo` (1.32) does: it finds the ReplicaSet of the previous revision
// and patches the Deployment's template (without the hash label) and annotations from it.
Status kubectl_style_undo(WorkloadHarness& h, const std::vector<json>& rss, const json& d) {
  static const std::set<std::string> kSkip = {"kubectl.kubernetes.io/last-applied-configuration",
                                              "deprecated.deployment.rollback.to",
                                              "deployment.kubernetes.io/revision",
                                              "deployment.kubernetes.io/revision-history",
                                              "deployment.kubernetes.io/desired-replicas",
                                              "deployment.kubernetes.io/max-replicas"};
  int64_t latest = -1;
  int64_t previous = -1;
  const json* previous_rs = nullptr;
  const json* latest_rs = nullptr;
  for (const json& rs : rss) {
    int64_t v =
        std::stoll(str(rs, {"metadata", "annotations", "deployment.kubernetes.io/revision"}));
    if (v > latest) {
      previous = latest;
      previous_rs = latest_rs;
      latest = v;
      latest_rs = &rs;
    } else if (v > previous) {
      previous = v;
      previous_rs = &rs;
    }
  }
  if (previous_rs == nullptr) return Status::NotFound("no rollout history found");
  json tmpl = (*previous_rs)["spec"]["template"];
  tmpl["metadata"]["labels"].erase(kHashLabel);
  json annotations = json::object();
  for (auto& [k, v] : d["metadata"]["annotations"].items()) {
    if (kSkip.count(k)) annotations[k] = v;
  }
  if (const json* a = member(*previous_rs, {"metadata", "annotations"})) {
    for (auto& [k, v] : a->items()) {
      if (!kSkip.count(k)) annotations[k] = v;
    }
  }
  json patch =
      json::array({{{"op", "replace"}, {"path", "/spec/template"}, {"value", tmpl}},
                   {{"op", "replace"}, {"path", "/metadata/annotations"}, {"value", annotations}}});
  auto r = h.client().patch(h.deployments(), "web", client::PatchType::kJson, patch.dump());
  return r.ok() ? Status::Ok() : r.status();
}

TEST_F(DeploymentControllerTest, UndoRestoresThePreviousTemplateAndMovesTheRevision) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  create(deployment("web", 2, "registry.local/web:1"));
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); }));
  std::string first = str(replica_sets(get("web"))[0], {"metadata", "name"});
  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", image_patch("registry.local/web:2")).ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:2", 2); }));
  json d = get("web");
  ASSERT_EQ(replica_sets(d).size(), 2u);

  ASSERT_TRUE(kubectl_style_undo(h_, replica_sets(d), d).ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:1", 2); }));
  d = get("web");
  auto rss = replica_sets(d);
  EXPECT_EQ(rss.size(), 2u) << "the old ReplicaSet is reused, not a new one created";
  json restored = h_.get(h_.replica_sets(), first);
  EXPECT_EQ(num(restored, {"spec", "replicas"}), 2);
  EXPECT_EQ(str(restored, {"metadata", "annotations", "deployment.kubernetes.io/revision"}), "3");
  EXPECT_EQ(str(restored, {"metadata", "annotations", "deployment.kubernetes.io/revision-history"}),
            "1");
  EXPECT_TRUE(eventually([&] {
    return str(get("web"), {"metadata", "annotations", "deployment.kubernetes.io/revision"}) == "3";
  }));
  // Undo again goes back to revision 2's template.
  d = get("web");
  ASSERT_TRUE(kubectl_style_undo(h_, replica_sets(d), d).ok());
  EXPECT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:2", 2); }));
}

TEST_F(DeploymentControllerTest, PauseStopsARolloutAndResumeFinishesIt) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  create(deployment("web", 2, "registry.local/web:1"));
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); }));

  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", {{"spec", {{"paused", true}}}}).ok());
  ASSERT_TRUE(eventually([&] {
    json d = get("web");
    return num(d, {"status", "observedGeneration"}) == num(d, {"metadata", "generation"}) &&
           condition_reason(d, "Progressing") == "DeploymentPaused";
  }));
  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", image_patch("registry.local/web:2")).ok());
  // Once the controller has seen the new template, nothing has rolled: no new ReplicaSet.
  ASSERT_TRUE(eventually([&] {
    json d = get("web");
    return num(d, {"status", "observedGeneration"}) == num(d, {"metadata", "generation"});
  }));
  json d = get("web");
  EXPECT_EQ(replica_sets(d).size(), 1u);
  EXPECT_TRUE(pods_are("registry.local/web:1", 2));
  EXPECT_EQ(num(d, {"status", "updatedReplicas"}), 0);
  // Scaling still works while paused.
  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", {{"spec", {{"replicas", 3}}}}).ok());
  ASSERT_TRUE(eventually([&] { return pods_are("registry.local/web:1", 3); }));
  EXPECT_EQ(replica_sets(get("web")).size(), 1u);

  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", {{"spec", {{"paused", false}}}}).ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:2", 3); }));
  EXPECT_EQ(replica_sets(get("web")).size(), 2u);
  EXPECT_EQ(condition_reason(get("web"), "Progressing"), "NewReplicaSetAvailable");
}

TEST_F(DeploymentControllerTest, RecreateDeletesOldPodsBeforeCreatingNewOnes) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  PodRecorder recorder(h_.client(), h_.ns());
  create(deployment("web", 3, "registry.local/web:1", {{"type", "Recreate"}}));
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); }));
  size_t from = settled(recorder, 3);
  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", image_patch("registry.local/web:2")).ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:2", 3); }));
  settled(recorder, 3);

  bool overlap = false;
  int least_alive = 3;
  PodHistory::replay(recorder.events(), from,
                     [&](const PodHistory::Point& p, const std::map<std::string, json>& pods) {
                       least_alive = std::min(least_alive, p.alive);
                       std::set<std::string> images;
                       for (const auto& [name, pod] : pods) {
                         images.insert(pod["spec"]["containers"][0]["image"].get<std::string>());
                       }
                       if (images.size() > 1) overlap = true;
                     });
  EXPECT_FALSE(overlap) << "old and new pods were alive together";
  EXPECT_EQ(least_alive, 0);
}

TEST_F(DeploymentControllerTest, OldReplicaSetsBeyondTheHistoryLimitAreDeleted) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json spec = deployment("web", 1, "registry.local/web:1");
  spec["spec"]["revisionHistoryLimit"] = 1;
  create(spec);
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); }));
  std::string first = str(replica_sets(get("web"))[0], {"metadata", "name"});
  for (const char* image : {"registry.local/web:2", "registry.local/web:3"}) {
    ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", image_patch(image)).ok());
    ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are(image, 1); }));
  }
  ASSERT_TRUE(eventually([&] { return replica_sets(get("web")).size() == 2; }));
  EXPECT_FALSE(h_.get(h_.replica_sets(), first).is_object()) << "revision 1 should be gone";
  json d = get("web");
  EXPECT_TRUE(replica_set_with_image(d, "registry.local/web:2").is_object());
  EXPECT_TRUE(replica_set_with_image(d, "registry.local/web:3").is_object());
}

TEST_F(DeploymentControllerTest, ARolloutWithoutProgressExceedsItsDeadline) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  kubelet.hold(true);  // pods never get ready
  json spec = deployment("web", 2, "registry.local/web:1");
  spec["spec"]["progressDeadlineSeconds"] = 2;
  create(spec);
  ASSERT_TRUE(eventually(
      [&] { return condition_reason(get("web"), "Progressing") == "ProgressDeadlineExceeded"; },
      20s))
      << get("web")["status"].dump();
  json d = get("web");
  EXPECT_EQ(condition_reason(d, "Available"), "MinimumReplicasUnavailable");
  std::string rs = str(replica_sets(d)[0], {"metadata", "name"});
  for (const json& c : d["status"]["conditions"]) {
    if (c["type"] == "Progressing") {
      EXPECT_EQ(c["status"], "False");
      EXPECT_EQ(c["message"], "ReplicaSet \"" + rs + "\" has timed out progressing.");
    }
  }
  // Once pods get ready the rollout completes after all.
  kubelet.hold(false);
  EXPECT_TRUE(eventually([&] {
    return rolled_out("web") &&
           condition_reason(get("web"), "Progressing") == "NewReplicaSetAvailable";
  }));
}

TEST_F(DeploymentControllerTest, DeletedPodsOfADeploymentAreReplaced) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  create(deployment("web", 2, "registry.local/web:1"));
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:1", 2); }));
  std::string victim = str(h_.live_pods()[0], {"metadata", "name"});
  ASSERT_TRUE(h_.client().remove(h_.pods(), victim).ok());
  ASSERT_TRUE(eventually([&] {
    auto pods = h_.live_pods();
    return pods_are("registry.local/web:1", 2) && str(pods[0], {"metadata", "name"}) != victim &&
           str(pods[1], {"metadata", "name"}) != victim;
  }));
  EXPECT_TRUE(eventually([&] { return rolled_out("web"); }));
}

TEST_F(DeploymentControllerTest, AdoptsAnOrphanReplicaSetRunningItsTemplate) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json spec = deployment("web", 2, "registry.local/web:1");
  json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata", {{"name", "web-by-hand"}, {"labels", {{"app", "web"}}}}},
             {"spec",
              {{"replicas", 2},
               {"selector", spec["spec"]["selector"]},
               {"template", spec["spec"]["template"]}}}};
  ASSERT_TRUE(h_.client().create(h_.replica_sets(), rs).ok());
  ASSERT_TRUE(eventually([&] { return pods_are("registry.local/web:1", 2); }));
  json d = create(spec);
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); }));
  auto rss = replica_sets(get("web"));
  ASSERT_EQ(rss.size(), 1u) << "the orphan is adopted as the new ReplicaSet, not replaced";
  EXPECT_EQ(str(rss[0], {"metadata", "name"}), "web-by-hand");
  EXPECT_EQ(rss[0]["metadata"]["ownerReferences"][0]["uid"], d["metadata"]["uid"]);
  EXPECT_TRUE(eventually([&] {
    json cur = h_.get(h_.replica_sets(), "web-by-hand");
    return str(cur, {"metadata", "annotations", "deployment.kubernetes.io/revision"}) == "1";
  }));
  EXPECT_TRUE(pods_are("registry.local/web:1", 2));
}

TEST_F(DeploymentControllerTest, AHashCollisionBumpsTheCollisionCount) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json spec = deployment("web", 1, "registry.local/web:1");
  spec["spec"]["paused"] = true;  // no ReplicaSet yet
  json d = create(spec);
  // Someone else's ReplicaSet already has the name the template hashes to.
  std::string hash = common::compute_hash(d["spec"]["template"], std::nullopt);
  json other = deployment("other", 0, "registry.local/other:1");
  json squatter = {{"apiVersion", "apps/v1"},
                   {"kind", "ReplicaSet"},
                   {"metadata", {{"name", "web-" + hash}, {"labels", {{"app", "other"}}}}},
                   {"spec",
                    {{"replicas", 0},
                     {"selector", other["spec"]["selector"]},
                     {"template", other["spec"]["template"]}}}};
  ASSERT_TRUE(h_.client().create(h_.replica_sets(), squatter).ok());
  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", {{"spec", {{"paused", false}}}}).ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); })) << get("web")["status"].dump();
  d = get("web");
  EXPECT_EQ(num(d, {"status", "collisionCount"}), 1);
  auto rss = replica_sets(d);
  ASSERT_EQ(rss.size(), 1u);
  EXPECT_EQ(str(rss[0], {"metadata", "name"}),
            "web-" + common::compute_hash(d["spec"]["template"], 1));
  EXPECT_TRUE(pods_are("registry.local/web:1", 1));
}

TEST_F(DeploymentControllerTest, TheDeprecatedRollbackAnnotationRollsBack) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  create(deployment("web", 1, "registry.local/web:1"));
  ASSERT_TRUE(eventually([&] { return rolled_out("web"); }));
  ASSERT_TRUE(h_.merge_patch(h_.deployments(), "web", image_patch("registry.local/web:2")).ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:2", 1); }));
  ASSERT_TRUE(h_.merge_patch(
                    h_.deployments(), "web",
                    {{"metadata", {{"annotations", {{"deprecated.deployment.rollback.to", "1"}}}}}})
                  .ok());
  ASSERT_TRUE(eventually([&] { return rolled_out("web") && pods_are("registry.local/web:1", 1); }));
  json d = get("web");
  EXPECT_FALSE(member(d, {"metadata", "annotations", "deprecated.deployment.rollback.to"}));
  EXPECT_EQ(replica_sets(d).size(), 2u);
  EXPECT_TRUE(eventually([&] {
    auto events = h_.events("web", "DeploymentRollback");
    return !events.empty() &&
           events[0]["message"] == "Rolled back deployment \"web\" to revision 1";
  }));
}

// `kubectl rollout history / undo / status` against the same server, when kubectl is here.
std::string run(const std::string& command, int* rc) {
  std::string out;
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  if (f == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int status = ::pclose(f);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST_F(DeploymentControllerTest, KubectlRolloutUndoHistoryAndStatusWork) {
  int rc = 0;
  run("kubectl version --client", &rc);
  if (rc != 0) GTEST_SKIP() << "kubectl is not installed";
  std::filesystem::path kubeconfig = h_.server().dir() / "kubeconfig.yaml";
  ASSERT_TRUE(std::filesystem::exists(kubeconfig));
  std::string kubectl = "kubectl --kubeconfig " + kubeconfig.string() + " --cache-dir " +
                        (h_.server().dir() / "kubectl-cache").string() + " -n " + h_.ns() + " ";

  FakeKubelet kubelet(h_.client(), h_.ns());
  create(deployment("web", 2, "registry.local/web:1"));
  std::string out = run(kubectl + "rollout status deployment/web --timeout=60s", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("deployment \"web\" successfully rolled out"), std::string::npos) << out;

  out = run(kubectl + "set image deployment/web c=registry.local/web:2", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = run(kubectl + "rollout status deployment/web --timeout=60s", &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_TRUE(pods_are("registry.local/web:2", 2) ||
              eventually([&] { return pods_are("registry.local/web:2", 2); }));

  out = run(kubectl + "rollout history deployment/web", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("REVISION"), std::string::npos) << out;
  EXPECT_NE(out.find("1 "), std::string::npos) << out;
  EXPECT_NE(out.find("2 "), std::string::npos) << out;

  out = run(kubectl + "rollout undo deployment/web", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("rolled back"), std::string::npos) << out;
  out = run(kubectl + "rollout status deployment/web --timeout=60s", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(eventually([&] { return pods_are("registry.local/web:1", 2); }));
  EXPECT_EQ(str(get("web"), {"metadata", "annotations", "deployment.kubernetes.io/revision"}), "3");

  // Pause and resume through kubectl too.
  out = run(kubectl + "rollout pause deployment/web", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = run(kubectl + "set image deployment/web c=registry.local/web:4", &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_TRUE(eventually([&] {
    json d = get("web");
    return num(d, {"status", "observedGeneration"}) == num(d, {"metadata", "generation"});
  }));
  EXPECT_TRUE(pods_are("registry.local/web:1", 2));
  out = run(kubectl + "rollout resume deployment/web", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = run(kubectl + "rollout status deployment/web --timeout=60s", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(eventually([&] { return pods_are("registry.local/web:4", 2); }));
}

}  // namespace
}  // namespace skiff::controllers
