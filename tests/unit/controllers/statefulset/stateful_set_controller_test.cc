// The StatefulSet controller against a real API server, with a fake kubelet that marks pods
// Running and Ready (or holds them, so that the test decides when each becomes ready).
#include "controllers/statefulset/stateful_set_controller.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "controllers/statefulset/stateful_set_utils.h"
#include "unit/controllers/replicaset/workload_harness.h"

namespace skiff::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using namespace testing_support;
using ::skiff::testing::eventually;

json stateful_set(const std::string& name, int replicas,
                  const std::string& policy = "OrderedReady") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "StatefulSet"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"replicas", replicas},
            {"serviceName", name + "-headless"},
            {"podManagementPolicy", policy},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", "registry.local/db:1"}}}}}}}}}}};
}

class StatefulSetControllerTest : public ::testing::Test {
 protected:
  StatefulSetControllerTest() : h_({"statefulset"}) {}

  void SetUp() override { ASSERT_TRUE(h_.ok()); }

  client::ResourceRef sets() const { return client::resources::kStatefulSets.in(h_.ns()); }
  client::ResourceRef revisions() const {
    return client::resources::kControllerRevisions.in(h_.ns());
  }
  client::ResourceRef claims() const {
    return client::resources::kPersistentVolumeClaims.in(h_.ns());
  }

  json create(const json& set) {
    auto r = h_.client().create(sets(), set);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? **r : json();
  }

  std::map<std::string, json> pods(const std::string& app) {
    std::map<std::string, json> out;
    for (json& p : h_.live_pods("app=" + app)) {
      std::string name = str(p, {"metadata", "name"});
      out[name] = std::move(p);
    }
    return out;
  }

  std::set<std::string> pod_names(const std::string& app) {
    std::set<std::string> out;
    for (const auto& [n, p] : pods(app)) out.insert(n);
    return out;
  }

  // The pods named `names` exist, are ready and run `image`; no other pod of the app lives.
  bool all_ready(const std::string& app, const std::set<std::string>& names,
                 const std::string& image) {
    auto ps = pods(app);
    if (ps.size() != names.size()) return false;
    for (const auto& [n, p] : ps) {
      if (!names.count(n) || !pod_ready(p) || p["spec"]["containers"][0]["image"] != image) {
        return false;
      }
    }
    return true;
  }

  json status(const std::string& name) { return h_.get(sets(), name)["status"]; }

  bool status_is(const std::string& name, int replicas, int ready, int current, int updated) {
    json set = h_.get(sets(), name);
    return num(set, {"status", "observedGeneration"}) == num(set, {"metadata", "generation"}) &&
           num(set, {"status", "replicas"}) == replicas &&
           num(set, {"status", "readyReplicas"}) == ready &&
           num(set, {"status", "availableReplicas"}) == ready &&
           num(set, {"status", "currentReplicas"}) == current &&
           num(set, {"status", "updatedReplicas"}) == updated;
  }

  Status set_image(const std::string& name, const std::string& image) {
    json patch = {{"spec",
                   {{"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}}}}};
    auto r = h_.client().patch(sets(), name, client::PatchType::kStrategicMerge, patch.dump());
    return r.ok() ? Status::Ok() : r.status();
  }

  WorkloadHarness h_;
};

// The index of the first recorded event matching `pred`, or SIZE_MAX.
size_t first_event(const std::vector<PodEvent>& events,
                   const std::function<bool(const PodEvent&)>& pred) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (pred(events[i])) return i;
  }
  return SIZE_MAX;
}

size_t added(const std::vector<PodEvent>& events, const std::string& name) {
  return first_event(events, [&](const PodEvent& e) {
    return e.type == client::WatchEventType::kAdded && str(e.pod, {"metadata", "name"}) == name;
  });
}

size_t became_ready(const std::vector<PodEvent>& events, const std::string& name) {
  return first_event(events, [&](const PodEvent& e) {
    return str(e.pod, {"metadata", "name"}) == name && pod_ready(e.pod);
  });
}

size_t deleted(const std::vector<PodEvent>& events, const std::string& name, size_t from = 0) {
  for (size_t i = from; i < events.size(); ++i) {
    const PodEvent& e = events[i];
    if (str(e.pod, {"metadata", "name"}) != name) continue;
    if (e.type == client::WatchEventType::kDeleted || pod_deleting(e.pod)) return i;
  }
  return SIZE_MAX;
}

TEST_F(StatefulSetControllerTest, OrderedReadyCreatesEachPodOnlyAfterThePreviousIsReady) {
  PodRecorder recorder(h_.client(), h_.ns());
  FakeKubelet kubelet(h_.client(), h_.ns());
  kubelet.hold(true);
  create(stateful_set("db", 3));
  for (const char* name : {"db-0", "db-1", "db-2"}) {
    ASSERT_TRUE(eventually([&] { return pod_names("db").count(name) == 1; })) << name;
    ASSERT_TRUE(kubelet.make_ready(name).ok());
  }
  ASSERT_TRUE(eventually([&] { return status_is("db", 3, 3, 3, 3); })) << status("db").dump();
  ASSERT_FALSE(recorder.closed());
  auto events = recorder.events();
  EXPECT_LT(became_ready(events, "db-0"), added(events, "db-1"));
  EXPECT_LT(became_ready(events, "db-1"), added(events, "db-2"));
  EXPECT_NE(added(events, "db-2"), SIZE_MAX);
  EXPECT_TRUE(eventually([&] { return h_.events("db", "SuccessfulCreate").size() == 3; }));
  for (const json& e : h_.events("db", "SuccessfulCreate")) {
    EXPECT_EQ(str(e, {"source", "component"}), "statefulset-controller");
  }
}

TEST_F(StatefulSetControllerTest, PodsCarryStableIdentityAndTheRevision) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json set = create(stateful_set("db", 2));
  ASSERT_TRUE(eventually([&] { return all_ready("db", {"db-0", "db-1"}, "registry.local/db:1"); }));
  ASSERT_TRUE(eventually([&] { return status_is("db", 2, 2, 2, 2); })) << status("db").dump();
  json st = status("db");
  std::string revision = st.value("updateRevision", "");
  EXPECT_FALSE(revision.empty());
  EXPECT_EQ(st.value("currentRevision", ""), revision);
  json cr = h_.get(revisions(), revision);
  EXPECT_EQ(cr["revision"], 1);
  EXPECT_EQ(cr["metadata"]["ownerReferences"][0]["uid"], set["metadata"]["uid"]);
  EXPECT_EQ(revision, "db-" + str(cr, {"metadata", "labels", "controller-revision-hash"}));
  int ordinal = 0;
  for (const auto& [name, p] : pods("db")) {
    EXPECT_EQ(name, "db-" + std::to_string(ordinal));
    EXPECT_EQ(str(p, {"spec", "hostname"}), name);
    EXPECT_EQ(str(p, {"spec", "subdomain"}), "db-headless");
    EXPECT_EQ(str(p, {"metadata", "labels", "statefulset.kubernetes.io/pod-name"}), name);
    EXPECT_EQ(str(p, {"metadata", "labels", "apps.kubernetes.io/pod-index"}),
              std::to_string(ordinal));
    EXPECT_EQ(str(p, {"metadata", "labels", "controller-revision-hash"}), revision);
    EXPECT_EQ(p["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    EXPECT_EQ(p["metadata"]["ownerReferences"][0]["controller"], true);
    ++ordinal;
  }
}

TEST_F(StatefulSetControllerTest, ScalesDownFromTheHighestOrdinalOneAtATime) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  create(stateful_set("db", 4));
  ASSERT_TRUE(eventually(
      [&] { return all_ready("db", {"db-0", "db-1", "db-2", "db-3"}, "registry.local/db:1"); }));
  PodRecorder recorder(h_.client(), h_.ns());
  ASSERT_TRUE(h_.merge_patch(sets(), "db", {{"spec", {{"replicas", 1}}}}).ok());
  ASSERT_TRUE(eventually([&] { return pod_names("db") == std::set<std::string>{"db-0"}; }));
  ASSERT_TRUE(eventually([&] { return status_is("db", 1, 1, 1, 1); })) << status("db").dump();
  auto events = recorder.events();
  size_t d3 = deleted(events, "db-3");
  size_t d2 = deleted(events, "db-2");
  size_t d1 = deleted(events, "db-1");
  ASSERT_NE(d1, SIZE_MAX);
  EXPECT_LT(d3, d2);
  EXPECT_LT(d2, d1);
  EXPECT_EQ(deleted(events, "db-0"), SIZE_MAX);
}

TEST_F(StatefulSetControllerTest, ParallelCreatesAllPodsWithoutWaiting) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  kubelet.hold(true);
  create(stateful_set("db", 3, "Parallel"));
  ASSERT_TRUE(eventually([&] {
    return pod_names("db") == std::set<std::string>{"db-0", "db-1", "db-2"};
  })) << ::testing::PrintToString(pod_names("db")) << status("db").dump()
      << ::testing::PrintToString(h_.events("db", "FailedCreate").size());
  for (const auto& [n, p] : pods("db")) EXPECT_FALSE(pod_ready(p)) << n;
  kubelet.hold(false);
  EXPECT_TRUE(eventually([&] { return status_is("db", 3, 3, 3, 3); })) << status("db").dump();
}

TEST_F(StatefulSetControllerTest, RollingUpdateGoesFromTheHighestOrdinalDownToThePartition) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json set = stateful_set("db", 3);
  set["spec"]["updateStrategy"] = {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 1}}}};
  create(set);
  ASSERT_TRUE(eventually(
      [&] { return all_ready("db", {"db-0", "db-1", "db-2"}, "registry.local/db:1"); }));
  ASSERT_TRUE(eventually([&] { return status_is("db", 3, 3, 3, 3); }));
  std::string first_revision = status("db").value("currentRevision", "");
  PodRecorder recorder(h_.client(), h_.ns());
  ASSERT_TRUE(set_image("db", "registry.local/db:2").ok());
  ASSERT_TRUE(eventually([&] {
    auto ps = pods("db");
    return ps.size() == 3 && pod_ready(ps["db-1"]) && pod_ready(ps["db-2"]) &&
           ps["db-1"]["spec"]["containers"][0]["image"] == "registry.local/db:2" &&
           ps["db-2"]["spec"]["containers"][0]["image"] == "registry.local/db:2";
  }));
  ASSERT_TRUE(eventually([&] { return status_is("db", 3, 3, 1, 2); })) << status("db").dump();
  json st = status("db");
  EXPECT_EQ(st.value("currentRevision", ""), first_revision);
  EXPECT_NE(st.value("updateRevision", ""), first_revision);
  // Below the partition the old revision stays.
  auto ps = pods("db");
  EXPECT_EQ(ps["db-0"]["spec"]["containers"][0]["image"], "registry.local/db:1");
  EXPECT_EQ(str(ps["db-0"], {"metadata", "labels", "controller-revision-hash"}), first_revision);
  auto events = recorder.events();
  size_t d2 = deleted(events, "db-2");
  size_t d1 = deleted(events, "db-1");
  ASSERT_NE(d1, SIZE_MAX);
  EXPECT_LT(d2, d1);
  // db-1 goes only once the new db-2 is ready.
  size_t new_db2_ready = SIZE_MAX;
  for (size_t i = d2; i < events.size(); ++i) {
    if (str(events[i].pod, {"metadata", "name"}) == "db-2" && pod_ready(events[i].pod) &&
        events[i].type != client::WatchEventType::kDeleted) {
      new_db2_ready = i;
      break;
    }
  }
  EXPECT_LT(new_db2_ready, d1);

  // Lowering the partition completes the update.
  ASSERT_TRUE(h_.merge_patch(sets(), "db",
                             {{"spec", {{"updateStrategy", {{"rollingUpdate", {{"partition", 0}}}}}}}})
                  .ok());
  ASSERT_TRUE(eventually(
      [&] { return all_ready("db", {"db-0", "db-1", "db-2"}, "registry.local/db:2"); }));
  ASSERT_TRUE(eventually([&] { return status_is("db", 3, 3, 3, 3); })) << status("db").dump();
  st = status("db");
  EXPECT_EQ(st.value("currentRevision", ""), st.value("updateRevision", ""));
}

TEST_F(StatefulSetControllerTest, OnDeleteLeavesPodsUntilDeleted) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json set = stateful_set("db", 2);
  set["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
  create(set);
  ASSERT_TRUE(eventually([&] { return all_ready("db", {"db-0", "db-1"}, "registry.local/db:1"); }));
  ASSERT_TRUE(set_image("db", "registry.local/db:2").ok());
  ASSERT_TRUE(eventually([&] { return status_is("db", 2, 2, 2, 0); })) << status("db").dump();
  EXPECT_TRUE(all_ready("db", {"db-0", "db-1"}, "registry.local/db:1"));
  ASSERT_TRUE(h_.client().remove(h_.pods(), "db-0").ok());
  ASSERT_TRUE(eventually([&] {
    auto ps = pods("db");
    return ps.size() == 2 && pod_ready(ps["db-0"]) &&
           ps["db-0"]["spec"]["containers"][0]["image"] == "registry.local/db:2" &&
           ps["db-1"]["spec"]["containers"][0]["image"] == "registry.local/db:1";
  }));
  EXPECT_TRUE(eventually([&] { return status_is("db", 2, 2, 1, 1); })) << status("db").dump();
}

TEST_F(StatefulSetControllerTest, VolumeClaimTemplatesBecomeRetainedClaims) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  json set = stateful_set("db", 2);
  set["spec"]["volumeClaimTemplates"] = {
      {{"metadata", {{"name", "data"}, {"labels", {{"tier", "storage"}}}}},
       {"spec",
        {{"accessModes", {"ReadWriteOnce"}}, {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}}};
  create(set);
  ASSERT_TRUE(eventually([&] { return all_ready("db", {"db-0", "db-1"}, "registry.local/db:1"); }));
  for (const char* claim : {"data-db-0", "data-db-1"}) {
    json pvc = h_.get(claims(), claim);
    ASSERT_TRUE(pvc.is_object()) << claim;
    EXPECT_EQ(str(pvc, {"metadata", "labels", "app"}), "db");
    EXPECT_EQ(str(pvc, {"metadata", "labels", "tier"}), "storage");
    EXPECT_EQ(str(pvc, {"spec", "resources", "requests", "storage"}), "1Gi");
  }
  for (const auto& [name, p] : pods("db")) {
    bool found = false;
    for (const json& v : p["spec"].value("volumes", json::array())) {
      if (v.value("name", "") == "data") {
        found = str(v, {"persistentVolumeClaim", "claimName"}) == "data-" + name;
      }
    }
    EXPECT_TRUE(found) << name << " " << p["spec"].dump();
  }
  EXPECT_TRUE(eventually([&] {
    for (const json& e : h_.events("db", "SuccessfulCreate")) {
      if (e.value("message", "") == "create Claim data-db-1 Pod db-1 in StatefulSet db success") {
        return true;
      }
    }
    return false;
  }));
  // Scaling down keeps the claim for when the ordinal comes back.
  ASSERT_TRUE(h_.merge_patch(sets(), "db", {{"spec", {{"replicas", 1}}}}).ok());
  ASSERT_TRUE(eventually([&] { return pod_names("db") == std::set<std::string>{"db-0"}; }));
  EXPECT_TRUE(h_.get(claims(), "data-db-1").is_object());
}

TEST_F(StatefulSetControllerTest, RollbackReusesTheEarlierRevision) {
  FakeKubelet kubelet(h_.client(), h_.ns());
  create(stateful_set("db", 2));
  ASSERT_TRUE(eventually([&] { return all_ready("db", {"db-0", "db-1"}, "registry.local/db:1"); }));
  ASSERT_TRUE(eventually([&] { return status_is("db", 2, 2, 2, 2); }));
  std::string first = status("db").value("updateRevision", "");
  ASSERT_TRUE(set_image("db", "registry.local/db:2").ok());
  ASSERT_TRUE(eventually([&] { return all_ready("db", {"db-0", "db-1"}, "registry.local/db:2"); }));
  ASSERT_TRUE(eventually([&] {
    json st = status("db");
    return st.value("currentRevision", "") == st.value("updateRevision", "") &&
           st.value("updateRevision", "") != first;
  }));
  // What `kubectl rollout undo` sends: the earlier revision's data as a strategic merge patch.
  json data = h_.get(revisions(), first)["data"];
  auto undo =
      h_.client().patch(sets(), "db", client::PatchType::kStrategicMerge, data.dump());
  ASSERT_TRUE(undo.ok()) << undo.status().to_string();
  ASSERT_TRUE(eventually([&] { return all_ready("db", {"db-0", "db-1"}, "registry.local/db:1"); }));
  ASSERT_TRUE(eventually([&] {
    json st = status("db");
    return st.value("updateRevision", "") == first && st.value("currentRevision", "") == first;
  })) << status("db").dump();
  EXPECT_EQ(num(h_.get(revisions(), first), {"revision"}), 3);
  EXPECT_EQ(h_.list(revisions()).size(), 2u);
}

TEST(StatefulSetUtils, NamesAndOrdinals) {
  EXPECT_EQ(statefulset::parent_and_ordinal("web-12"), std::make_pair(std::string("web"), 12));
  EXPECT_EQ(statefulset::parent_and_ordinal("my-web-0"), std::make_pair(std::string("my-web"), 0));
  EXPECT_EQ(statefulset::parent_and_ordinal("web").second, -1);
  EXPECT_EQ(statefulset::parent_and_ordinal("web-x1").second, -1);
  EXPECT_EQ(statefulset::parent_and_ordinal("web-").second, -1);
  json set = stateful_set("web", 1);
  set["metadata"]["namespace"] = "apps";
  json claim = {{"metadata", {{"name", "data"}}}};
  EXPECT_EQ(statefulset::claim_name(set, claim, 3), "data-web-3");
  EXPECT_TRUE(statefulset::is_member_of(set, json{{"metadata", {{"name", "web-1"}}}}));
  EXPECT_FALSE(statefulset::is_member_of(set, json{{"metadata", {{"name", "web2-1"}}}}));
}

}  // namespace
}  // namespace skiff::controllers
