// The Job and TTL-after-finished controllers against a real API server; tests play the node,
// moving pods to Succeeded or Failed through pods/status.
#include "controllers/job/job_controller.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "controllers/job/ttl_after_finished_controller.h"
#include "unit/controllers/job/controller_runner.h"

namespace skiff::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using namespace testing_support;
using ::skiff::testing::eventually;

constexpr const char* kNs = "batch";

json job_object(const std::string& name, int completions, int parallelism) {
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"completions", completions},
            {"parallelism", parallelism},
            {"template",
             {{"spec",
               {{"restartPolicy", "Never"},
                {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}}}}}};
}

class JobControllerTest : public ::testing::Test {
 protected:
  JobControllerTest() {
    if (!server_.ok()) return;
    admin_ = server_.client("skiff-test");
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}};
    auto created = admin_->create(client::resources::kNamespaces, ns);
    if (!created.ok()) ADD_FAILURE() << created.status().to_string();
    job::JobControllerOptions o;
    o.pod_failure_backoff = 10ms;
    o.max_pod_failure_backoff = 40ms;
    runner_ = std::make_unique<ControllerRunner>(
        server_, clock_, "job-controller",
        [o](ControllerContext& ctx) { return std::make_unique<job::JobController>(ctx, o); });
  }

  void SetUp() override { ASSERT_TRUE(server_.ok()); }

  client::ResourceRef jobs() const { return client::resources::kJobs.in(kNs); }
  client::ResourceRef pods() const { return client::resources::kPods.in(kNs); }

  json create(const json& obj) {
    auto r = admin_->create(jobs(), obj);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? **r : json();
  }
  json get(const std::string& name) {
    auto r = admin_->get(jobs(), name);
    return r.ok() ? **r : json();
  }
  // The Job's pods not being deleted, by the label Kubernetes puts on them.
  std::vector<json> live_pods(const std::string& job) {
    client::ListOptions o;
    o.label_selector = "batch.kubernetes.io/job-name=" + job;
    auto l = admin_->list(pods(), o);
    std::vector<json> out;
    if (!l.ok()) return out;
    for (const auto& p : l->items) {
      if (at(*p, {"metadata", "deletionTimestamp"}) == nullptr) out.push_back(*p);
    }
    return out;
  }
  std::vector<json> running_pods(const std::string& job) {
    std::vector<json> out;
    for (json& p : live_pods(job)) {
      std::string phase = text(p, {"status", "phase"});
      if (phase != "Succeeded" && phase != "Failed") out.push_back(std::move(p));
    }
    return out;
  }
  Status set_pod_status(const std::string& pod, const json& status) {
    auto r = admin_->patch(pods(), pod, client::PatchType::kMerge, json{{"status", status}}.dump(),
                           "status");
    return r.ok() ? Status::Ok() : r.status();
  }
  Status finish(const json& pod, const std::string& phase) {
    return set_pod_status(text(pod, {"metadata", "name"}), {{"phase", phase}});
  }
  std::vector<json> events(const std::string& name, const std::string& reason) {
    std::vector<json> out;
    auto l = admin_->list(client::resources::kEvents.in(kNs));
    if (!l.ok()) return out;
    for (const auto& e : l->items) {
      if (text(*e, {"involvedObject", "name"}) == name && e->value("reason", "") == reason) {
        out.push_back(*e);
      }
    }
    return out;
  }
  bool has_finalizer(const json& pod) {
    const json* f = at(pod, {"metadata", "finalizers"});
    if (f == nullptr) return false;
    for (const json& v : *f) {
      if (v == job::kJobTrackingFinalizer) return true;
    }
    return false;
  }

  ShiftedClock clock_;
  skiff::testing::TestServer server_;
  std::unique_ptr<client::Client> admin_;
  std::unique_ptr<ControllerRunner> runner_;
};

TEST_F(JobControllerTest, RunsCompletionsWithParallelismAndCompletes) {
  json created = create(job_object("work", 3, 2));
  std::string uid = text(created, {"metadata", "uid"});
  ASSERT_TRUE(eventually([&] { return running_pods("work").size() == 2; }));
  for (const json& p : live_pods("work")) {
    EXPECT_EQ(text(p, {"metadata", "generateName"}), "work-");
    EXPECT_EQ(text(p, {"metadata", "labels", "batch.kubernetes.io/job-name"}), "work");
    EXPECT_EQ(text(p, {"metadata", "labels", "job-name"}), "work");
    EXPECT_EQ(text(p, {"metadata", "labels", "batch.kubernetes.io/controller-uid"}), uid);
    EXPECT_EQ(text(p, {"metadata", "labels", "controller-uid"}), uid);
    EXPECT_TRUE(has_finalizer(p)) << p["metadata"].dump();
    const json& ref = p["metadata"]["ownerReferences"][0];
    EXPECT_EQ(ref["kind"], "Job");
    EXPECT_EQ(ref["uid"], uid);
    EXPECT_EQ(ref["controller"], true);
  }
  ASSERT_TRUE(eventually([&] {
    json j = get("work");
    return number(j, {"status", "active"}) == 2 && at(j, {"status", "startTime"}) != nullptr;
  }));

  for (const json& p : running_pods("work")) ASSERT_TRUE(finish(p, "Succeeded").ok());
  // Two of three done: exactly one more pod, never more than the remaining completions.
  ASSERT_TRUE(eventually([&] { return running_pods("work").size() == 1; }));
  ASSERT_TRUE(eventually([&] { return number(get("work"), {"status", "succeeded"}) == 2; }));
  EXPECT_EQ(running_pods("work").size(), 1u);
  EXPECT_FALSE(condition_true(get("work"), "Complete"));

  ASSERT_TRUE(finish(running_pods("work")[0], "Succeeded").ok());
  ASSERT_TRUE(eventually([&] { return condition_true(get("work"), "Complete"); }))
      << get("work")["status"].dump();
  json j = get("work");
  EXPECT_EQ(number(j, {"status", "succeeded"}), 3);
  EXPECT_EQ(number(j, {"status", "failed"}), 0);
  EXPECT_EQ(number(j, {"status", "active"}), 0);
  EXPECT_NE(at(j, {"status", "completionTime"}), nullptr);
  EXPECT_TRUE(condition_true(j, "SuccessCriteriaMet"));
  EXPECT_EQ(condition(j, "SuccessCriteriaMet")->value("reason", ""), "CompletionsReached");
  EXPECT_EQ(condition(j, "Complete")->value("reason", ""), "CompletionsReached");
  EXPECT_EQ(at(j, {"status", "uncountedTerminatedPods", "succeeded"}), nullptr);
  ASSERT_TRUE(eventually([&] {
    for (const json& p : live_pods("work")) {
      if (has_finalizer(p)) return false;
    }
    return true;
  }));
  EXPECT_EQ(live_pods("work").size(), 3u);
  EXPECT_TRUE(eventually([&] { return events("work", "SuccessfulCreate").size() == 3; }));
  EXPECT_TRUE(eventually([&] { return events("work", "Completed").size() == 1; }));
  for (const json& e : events("work", "SuccessfulCreate")) {
    EXPECT_EQ(e["message"].get<std::string>().rfind("Created pod: work-", 0), 0u);
    EXPECT_EQ(text(e, {"source", "component"}), "job-controller");
  }
}

TEST_F(JobControllerTest, ReplacesFailedPodsUntilBackoffLimitThenFails) {
  json j = job_object("flaky", 1, 1);
  j["spec"]["backoffLimit"] = 1;
  create(j);
  std::set<std::string> seen;
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSERT_TRUE(eventually([&] {
      auto pods = running_pods("flaky");
      return pods.size() == 1 && seen.count(text(pods[0], {"metadata", "name"})) == 0;
    })) << "attempt "
        << attempt;
    json pod = running_pods("flaky")[0];
    seen.insert(text(pod, {"metadata", "name"}));
    ASSERT_TRUE(finish(pod, "Failed").ok());
  }
  ASSERT_TRUE(eventually([&] { return condition_true(get("flaky"), "Failed"); }))
      << get("flaky")["status"].dump();
  json got = get("flaky");
  EXPECT_EQ(number(got, {"status", "failed"}), 2);
  EXPECT_EQ(condition(got, "Failed")->value("reason", ""), "BackoffLimitExceeded");
  EXPECT_EQ(condition(got, "Failed")->value("message", ""),
            "Job has reached the specified backoff limit");
  EXPECT_TRUE(condition_true(got, "FailureTarget"));
  EXPECT_EQ(at(got, {"status", "completionTime"}), nullptr);
  EXPECT_TRUE(running_pods("flaky").empty());
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(eventually([&] {
    auto e = events("flaky", "BackoffLimitExceeded");
    return e.size() == 1 && e[0].value("type", "") == "Warning";
  }));
}

TEST_F(JobControllerTest, RestartsUnderOnFailureCountTowardBackoffLimit) {
  json j = job_object("restarts", 1, 1);
  j["spec"]["backoffLimit"] = 2;
  j["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure";
  create(j);
  ASSERT_TRUE(eventually([&] { return running_pods("restarts").size() == 1; }));
  json pod = running_pods("restarts")[0];
  ASSERT_TRUE(set_pod_status(text(pod, {"metadata", "name"}),
                             {{"phase", "Running"},
                              {"containerStatuses",
                               {{{"name", "c"},
                                 {"image", "busybox"},
                                 {"imageID", ""},
                                 {"ready", false},
                                 {"restartCount", 2},
                                 {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}}}}}})
                  .ok());
  ASSERT_TRUE(eventually([&] { return condition_true(get("restarts"), "Failed"); }))
      << get("restarts")["status"].dump();
  EXPECT_EQ(condition(get("restarts"), "Failed")->value("reason", ""), "BackoffLimitExceeded");
  EXPECT_TRUE(running_pods("restarts").empty());
}

TEST_F(JobControllerTest, IndexedJobRunsEachIndexToSuccess) {
  json j = job_object("idx", 3, 3);
  j["spec"]["completionMode"] = "Indexed";
  create(j);
  ASSERT_TRUE(eventually([&] { return running_pods("idx").size() == 3; }));
  std::map<std::string, json> by_index;
  for (const json& p : running_pods("idx")) {
    std::string ix =
        text(p, {"metadata", "annotations", "batch.kubernetes.io/job-completion-index"});
    EXPECT_EQ(text(p, {"metadata", "labels", "batch.kubernetes.io/job-completion-index"}), ix);
    EXPECT_EQ(text(p, {"spec", "hostname"}), "idx-" + ix);
    EXPECT_EQ(text(p, {"metadata", "generateName"}), "idx-" + ix + "-");
    const json& env = p["spec"]["containers"][0]["env"];
    ASSERT_TRUE(env.is_array());
    EXPECT_EQ(env[0]["name"], "JOB_COMPLETION_INDEX");
    EXPECT_EQ(env[0]["valueFrom"]["fieldRef"]["fieldPath"],
              "metadata.annotations['batch.kubernetes.io/job-completion-index']");
    by_index[ix] = p;
  }
  ASSERT_EQ(by_index.size(), 3u);
  ASSERT_TRUE(by_index.count("0") && by_index.count("1") && by_index.count("2"));

  ASSERT_TRUE(finish(by_index["1"], "Succeeded").ok());
  ASSERT_TRUE(eventually([&] { return text(get("idx"), {"status", "completedIndexes"}) == "1"; }));
  // A failed index is retried with a new pod of the same index.
  ASSERT_TRUE(finish(by_index["0"], "Failed").ok());
  std::string old_name = text(by_index["0"], {"metadata", "name"});
  ASSERT_TRUE(eventually([&] {
    for (const json& p : running_pods("idx")) {
      if (text(p, {"metadata", "annotations", "batch.kubernetes.io/job-completion-index"}) == "0" &&
          text(p, {"metadata", "name"}) != old_name) {
        return true;
      }
    }
    return false;
  }));
  EXPECT_EQ(running_pods("idx").size(), 2u);
  for (const json& p : running_pods("idx")) ASSERT_TRUE(finish(p, "Succeeded").ok());
  ASSERT_TRUE(eventually([&] { return condition_true(get("idx"), "Complete"); }))
      << get("idx")["status"].dump();
  json got = get("idx");
  EXPECT_EQ(text(got, {"status", "completedIndexes"}), "0-2");
  EXPECT_EQ(number(got, {"status", "succeeded"}), 3);
  EXPECT_EQ(number(got, {"status", "failed"}), 1);
}

TEST_F(JobControllerTest, SuspendedJobStartsNothingUntilResumed) {
  json j = job_object("later", 1, 1);
  j["spec"]["suspend"] = true;
  create(j);
  ASSERT_TRUE(eventually([&] { return condition_true(get("later"), "Suspended"); }));
  json got = get("later");
  EXPECT_EQ(condition(got, "Suspended")->value("reason", ""), "JobSuspended");
  EXPECT_EQ(at(got, {"status", "startTime"}), nullptr);
  EXPECT_TRUE(live_pods("later").empty());

  auto patched =
      admin_->patch(jobs(), "later", client::PatchType::kMerge, R"({"spec":{"suspend":false}})");
  ASSERT_TRUE(patched.ok()) << patched.status().to_string();
  ASSERT_TRUE(eventually([&] { return running_pods("later").size() == 1; }));
  ASSERT_TRUE(eventually([&] {
    json j = get("later");
    const json* c = condition(j, "Suspended");
    return c != nullptr && c->value("status", "") == "False";
  }));
  got = get("later");
  EXPECT_EQ(condition(got, "Suspended")->value("reason", ""), "JobResumed");
  EXPECT_NE(at(got, {"status", "startTime"}), nullptr);
  EXPECT_TRUE(eventually([&] { return events("later", "Resumed").size() == 1; }));

  // Suspending again deletes the running pod.
  patched =
      admin_->patch(jobs(), "later", client::PatchType::kMerge, R"({"spec":{"suspend":true}})");
  ASSERT_TRUE(patched.ok());
  ASSERT_TRUE(eventually([&] { return running_pods("later").empty(); }));
  EXPECT_TRUE(eventually([&] { return condition_true(get("later"), "Suspended"); }));
}

TEST_F(JobControllerTest, ActiveDeadlineFailsTheJobAndStopsItsPods) {
  json j = job_object("slow", 1, 1);
  j["spec"]["activeDeadlineSeconds"] = 30;
  create(j);
  ASSERT_TRUE(eventually([&] { return running_pods("slow").size() == 1; }));
  ASSERT_TRUE(eventually([&] { return at(get("slow"), {"status", "startTime"}) != nullptr; }));
  clock_.advance(31s);
  runner_->enqueue(std::string(kNs) + "/slow");
  ASSERT_TRUE(eventually([&] { return condition_true(get("slow"), "Failed"); }))
      << get("slow")["status"].dump();
  EXPECT_EQ(condition(get("slow"), "Failed")->value("reason", ""), "DeadlineExceeded");
  EXPECT_TRUE(running_pods("slow").empty());
  EXPECT_EQ(number(get("slow"), {"status", "failed"}), 1);
}

TEST_F(JobControllerTest, FinishedJobIsDeletedAfterItsTtl) {
  ControllerRunner ttl(server_, clock_, "ttl-after-finished-controller",
                       [](ControllerContext& ctx) {
                         return std::make_unique<job::TtlAfterFinishedController>(ctx);
                       });
  json j = job_object("short", 1, 1);
  j["spec"]["ttlSecondsAfterFinished"] = 60;
  create(j);
  ASSERT_TRUE(eventually([&] { return running_pods("short").size() == 1; }));
  ASSERT_TRUE(finish(running_pods("short")[0], "Succeeded").ok());
  ASSERT_TRUE(eventually([&] { return condition_true(get("short"), "Complete"); }));
  EXPECT_TRUE(admin_->get(jobs(), "short").ok());
  auto left = job::ttl_time_left(get("short"), clock_.now());
  ASSERT_TRUE(left.has_value());
  EXPECT_GT(*left, 0s);
  clock_.advance(61s);
  ttl.enqueue(std::string(kNs) + "/short");
  EXPECT_TRUE(eventually([&] { return admin_->get(jobs(), "short").status().is_not_found(); }));
}

TEST(JobBackoff, DoublesFromTheBaseUpToTheCap) {
  TimePoint t0 = TimePoint() + std::chrono::hours(1000);
  EXPECT_EQ(job::pod_failure_backoff_remaining(0, t0, t0, 10s, 6min), 0s);
  EXPECT_EQ(job::pod_failure_backoff_remaining(1, t0, t0, 10s, 6min), 10s);
  EXPECT_EQ(job::pod_failure_backoff_remaining(3, t0, t0, 10s, 6min), 40s);
  EXPECT_EQ(job::pod_failure_backoff_remaining(3, t0, t0 + 15s, 10s, 6min), 25s);
  EXPECT_EQ(job::pod_failure_backoff_remaining(20, t0, t0, 10s, 6min), 6min);
  EXPECT_EQ(job::pod_failure_backoff_remaining(2, t0, t0 + 1min, 10s, 6min), 0s);
}

// `kubectl create job` and `kubectl get jobs` against the same server, when kubectl is here.
TEST_F(JobControllerTest, KubectlCreateJobCompletesAndShowsCompletions) {
  int rc = 0;
  run_command("kubectl version --client", &rc);
  if (rc != 0) GTEST_SKIP() << "kubectl is not installed";
  std::filesystem::path kubeconfig = server_.dir() / "kubeconfig.yaml";
  ASSERT_TRUE(std::filesystem::exists(kubeconfig));
  std::string kubectl = "kubectl --kubeconfig " + kubeconfig.string() + " --cache-dir " +
                        (server_.dir() / "kubectl-cache").string() + " -n " + kNs + " ";
  std::string out = run_command(kubectl + "create job once --image=busybox -- true", &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_TRUE(eventually([&] { return running_pods("once").size() == 1; }));
  out = run_command(kubectl + "get jobs once --no-headers", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("0/1"), std::string::npos) << out;
  ASSERT_TRUE(finish(running_pods("once")[0], "Succeeded").ok());
  ASSERT_TRUE(eventually([&] { return condition_true(get("once"), "Complete"); }));
  out = run_command(kubectl + "get jobs once --no-headers", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Complete"), std::string::npos) << out;
  EXPECT_NE(out.find("1/1"), std::string::npos) << out;
  out = run_command(kubectl + "wait --for=condition=complete job/once --timeout=20s", &rc);
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace skiff::controllers
