// The CronJob controller against a real API server, with a clock the test moves; tests play
// the Job controller, marking Jobs finished through jobs/status.
#include "controllers/cronjob/cronjob_controller.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "unit/controllers/job/controller_runner.h"

namespace skiff::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using namespace testing_support;
using ::skiff::testing::eventually;

constexpr const char* kNs = "cron";

json cron_job(const std::string& name, const std::string& schedule) {
  return {{"apiVersion", "batch/v1"},
          {"kind", "CronJob"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"schedule", schedule},
            {"jobTemplate",
             {{"metadata", {{"labels", {{"app", name}}}, {"annotations", {{"note", "x"}}}}},
              {"spec",
               {{"template",
                 {{"spec",
                   {{"restartPolicy", "Never"},
                    {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}}}}}}}}}};
}

int64_t minutes(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count() / 60;
}

class CronJobControllerTest : public ::testing::Test {
 protected:
  CronJobControllerTest() {
    if (!server_.ok()) return;
    admin_ = server_.client("skiff-test");
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}};
    auto created = admin_->create(client::resources::kNamespaces, ns);
    if (!created.ok()) ADD_FAILURE() << created.status().to_string();
    runner_ = std::make_unique<ControllerRunner>(
        server_, clock_, "cronjob-controller",
        [](ControllerContext& ctx) { return std::make_unique<cronjob::CronJobController>(ctx); });
  }

  void SetUp() override { ASSERT_TRUE(server_.ok()); }

  client::ResourceRef cron_jobs() const { return client::resources::kCronJobs.in(kNs); }
  client::ResourceRef jobs() const { return client::resources::kJobs.in(kNs); }

  // Creates the CronJob and returns its creation time (where scheduling starts).
  TimePoint create(const json& cj) {
    auto r = admin_->create(cron_jobs(), cj);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok()) return TimePoint();
    return *parse_rfc3339(text(**r, {"metadata", "creationTimestamp"}));
  }
  json get(const std::string& name) {
    auto r = admin_->get(cron_jobs(), name);
    return r.ok() ? **r : json();
  }
  std::vector<json> job_list() {
    auto l = admin_->list(jobs());
    std::vector<json> out;
    if (!l.ok()) return out;
    for (const auto& j : l->items) {
      if (at(*j, {"metadata", "deletionTimestamp"}) == nullptr) out.push_back(*j);
    }
    return out;
  }
  bool job_exists(const std::string& name) { return admin_->get(jobs(), name).ok(); }
  size_t active(const std::string& cj) {
    json obj = get(cj);
    const json* a = at(obj, {"status", "active"});
    return a != nullptr && a->is_array() ? a->size() : 0;
  }
  // Moves the clock to `seconds` past the minute after `t` and has the CronJob looked at.
  TimePoint fire_after(TimePoint t, const std::string& cj, int seconds = 5) {
    TimePoint minute = std::chrono::floor<std::chrono::minutes>(t) + 1min;
    clock_.set(minute + std::chrono::seconds(seconds));
    runner_->enqueue(std::string(kNs) + "/" + cj);
    return minute;
  }
  // Marks a Job finished, as the Job controller would.
  Status finish_job(const std::string& name, const std::string& type, TimePoint start) {
    std::string now = format_rfc3339(skiff::now());
    json status = {{"startTime", format_rfc3339(start)}};
    if (type == "Complete") {
      status["succeeded"] = 1;
      status["completionTime"] = now;
      status["conditions"] = {
          {{"type", "SuccessCriteriaMet"}, {"status", "True"}, {"lastTransitionTime", now}},
          {{"type", "Complete"}, {"status", "True"}, {"lastTransitionTime", now}}};
    } else {
      status["failed"] = 1;
      status["conditions"] = {
          {{"type", "FailureTarget"}, {"status", "True"}, {"lastTransitionTime", now}},
          {{"type", "Failed"}, {"status", "True"}, {"lastTransitionTime", now}}};
    }
    auto r = admin_->patch(jobs(), name, client::PatchType::kMerge, json{{"status", status}}.dump(),
                           "status");
    return r.ok() ? Status::Ok() : r.status();
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
  std::string job_for(const std::string& cj, TimePoint minute) {
    return cj + "-" + std::to_string(minutes(minute));
  }

  ShiftedClock clock_;
  skiff::testing::TestServer server_;
  std::unique_ptr<client::Client> admin_;
  std::unique_ptr<ControllerRunner> runner_;
};

TEST_F(CronJobControllerTest, CreatesAJobAtTheScheduledMinuteAndTracksIt) {
  TimePoint created = create(cron_job("tick", "* * * * *"));
  std::string uid = text(get("tick"), {"metadata", "uid"});
  TimePoint minute = fire_after(created, "tick");
  std::string name = job_for("tick", minute);
  ASSERT_TRUE(eventually([&] { return job_exists(name); })) << get("tick").dump();
  json job = **admin_->get(jobs(), name);
  EXPECT_EQ(
      text(job, {"metadata", "annotations", "batch.kubernetes.io/cronjob-scheduled-timestamp"}),
      format_rfc3339(minute));
  EXPECT_EQ(text(job, {"metadata", "annotations", "note"}), "x");
  EXPECT_EQ(text(job, {"metadata", "labels", "app"}), "tick");
  const json& ref = job["metadata"]["ownerReferences"][0];
  EXPECT_EQ(ref["kind"], "CronJob");
  EXPECT_EQ(ref["uid"], uid);
  EXPECT_EQ(ref["controller"], true);
  ASSERT_TRUE(eventually([&] { return active("tick") == 1; }));
  json cj = get("tick");
  EXPECT_EQ(text(cj, {"status", "lastScheduleTime"}), format_rfc3339(minute));
  EXPECT_EQ(text(cj["status"]["active"][0], {"name"}), name);
  EXPECT_TRUE(eventually([&] {
    auto e = events("tick", "SuccessfulCreate");
    return e.size() == 1 && e[0]["message"] == "Created job " + name;
  }));

  ASSERT_TRUE(finish_job(name, "Complete", minute).ok());
  ASSERT_TRUE(eventually([&] { return active("tick") == 0; }));
  EXPECT_TRUE(eventually([&] {
    return at(get("tick"), {"status", "lastSuccessfulTime"}) != nullptr;
  }));
  EXPECT_TRUE(eventually([&] {
    auto e = events("tick", "SawCompletedJob");
    return e.size() == 1 &&
           e[0]["message"] == "Saw completed job: " + name + ", condition: Complete";
  }));
}

TEST_F(CronJobControllerTest, AllowRunsJobsSideBySide) {
  TimePoint created = create(cron_job("allow", "* * * * *"));
  TimePoint first = fire_after(created, "allow");
  ASSERT_TRUE(eventually([&] { return active("allow") == 1; }));
  TimePoint second = fire_after(first, "allow");
  ASSERT_TRUE(eventually([&] { return active("allow") == 2; }));
  EXPECT_TRUE(job_exists(job_for("allow", first)));
  EXPECT_TRUE(job_exists(job_for("allow", second)));
}

TEST_F(CronJobControllerTest, ForbidSkipsWhileAJobRuns) {
  json cj = cron_job("forbid", "* * * * *");
  cj["spec"]["concurrencyPolicy"] = "Forbid";
  TimePoint created = create(cj);
  TimePoint first = fire_after(created, "forbid");
  ASSERT_TRUE(eventually([&] { return active("forbid") == 1; }));
  TimePoint second = fire_after(first, "forbid");
  ASSERT_TRUE(eventually([&] { return !events("forbid", "JobAlreadyActive").empty(); }));
  EXPECT_FALSE(job_exists(job_for("forbid", second)));
  EXPECT_EQ(active("forbid"), 1u);
  // Once the running Job is done, the skipped time (no starting deadline) runs.
  ASSERT_TRUE(finish_job(job_for("forbid", first), "Complete", first).ok());
  EXPECT_TRUE(eventually([&] { return job_exists(job_for("forbid", second)); }));
  EXPECT_TRUE(eventually([&] {
    json obj = get("forbid");
    return active("forbid") == 1 &&
           text(obj["status"]["active"][0], {"name"}) == job_for("forbid", second);
  }));
}

TEST_F(CronJobControllerTest, ReplaceDeletesTheRunningJob) {
  json cj = cron_job("replace", "* * * * *");
  cj["spec"]["concurrencyPolicy"] = "Replace";
  TimePoint created = create(cj);
  TimePoint first = fire_after(created, "replace");
  ASSERT_TRUE(eventually([&] { return active("replace") == 1; }));
  TimePoint second = fire_after(first, "replace");
  ASSERT_TRUE(eventually([&] { return job_exists(job_for("replace", second)); }));
  EXPECT_TRUE(eventually([&] { return !job_exists(job_for("replace", first)); }));
  EXPECT_TRUE(eventually([&] {
    json obj = get("replace");
    return active("replace") == 1 &&
           text(obj["status"]["active"][0], {"name"}) == job_for("replace", second);
  }));
  EXPECT_FALSE(events("replace", "SuccessfulDelete").empty());
}

TEST_F(CronJobControllerTest, KeepsOnlyTheNewestFinishedJobs) {
  json cj = cron_job("history", "* * * * *");
  cj["spec"]["successfulJobsHistoryLimit"] = 1;
  cj["spec"]["failedJobsHistoryLimit"] = 0;
  TimePoint created = create(cj);
  TimePoint first = fire_after(created, "history");
  ASSERT_TRUE(eventually([&] { return job_exists(job_for("history", first)); }));
  TimePoint second = fire_after(first, "history");
  ASSERT_TRUE(eventually([&] { return job_exists(job_for("history", second)); }));
  TimePoint third = fire_after(second, "history");
  ASSERT_TRUE(eventually([&] { return job_exists(job_for("history", third)); }));
  ASSERT_TRUE(finish_job(job_for("history", first), "Complete", first).ok());
  ASSERT_TRUE(finish_job(job_for("history", second), "Complete", second).ok());
  ASSERT_TRUE(finish_job(job_for("history", third), "Failed", third).ok());
  EXPECT_TRUE(eventually([&] {
    return !job_exists(job_for("history", first)) && job_exists(job_for("history", second)) &&
           !job_exists(job_for("history", third));
  }));
  EXPECT_TRUE(eventually([&] { return active("history") == 0; }));
}

TEST_F(CronJobControllerTest, RunMissedBeyondTheStartingDeadlineIsSkipped) {
  json cj = cron_job("late", "* * * * *");
  cj["spec"]["startingDeadlineSeconds"] = 10;
  TimePoint created = create(cj);
  // 30 s late for a 10 s deadline: that minute is not run; the next one is.
  TimePoint missed = fire_after(created, "late", 30);
  TimePoint next = fire_after(missed, "late", 5);
  ASSERT_TRUE(eventually([&] { return job_exists(job_for("late", next)); }));
  EXPECT_FALSE(job_exists(job_for("late", missed)));
  EXPECT_TRUE(eventually([&] {
    return text(get("late"), {"status", "lastScheduleTime"}) == format_rfc3339(next);
  }));
}

TEST_F(CronJobControllerTest, SuspendedCronJobRunsOnlyAfterResuming) {
  json cj = cron_job("paused", "* * * * *");
  cj["spec"]["suspend"] = true;
  cj["spec"]["startingDeadlineSeconds"] = 50;
  TimePoint created = create(cj);
  TimePoint minute = fire_after(created, "paused");
  auto patched = admin_->patch(cron_jobs(), "paused", client::PatchType::kMerge,
                               R"({"spec":{"suspend":false}})");
  ASSERT_TRUE(patched.ok());
  // The time missed while suspended is still within the deadline: it runs now.
  EXPECT_TRUE(eventually([&] { return job_exists(job_for("paused", minute)); }));
}

TEST_F(CronJobControllerTest, TimeZoneNamesTheScheduledTimeInThatZone) {
  json cj = cron_job("berlin", "0 * * * *");
  cj["spec"]["timeZone"] = "Europe/Berlin";
  TimePoint created = create(cj);
  TimePoint hour = std::chrono::floor<std::chrono::hours>(created) + 1h;
  clock_.set(hour + 10s);
  runner_->enqueue(std::string(kNs) + "/berlin");
  std::string name = "berlin-" + std::to_string(minutes(hour));
  ASSERT_TRUE(eventually([&] { return job_exists(name); })) << get("berlin").dump();
  std::string stamp =
      text(**admin_->get(jobs(), name),
           {"metadata", "annotations", "batch.kubernetes.io/cronjob-scheduled-timestamp"});
  auto zone = TimeZone::load("Europe/Berlin");
  ASSERT_TRUE(zone.ok());
  EXPECT_EQ(stamp, format_rfc3339_in_zone(hour, **zone));
  EXPECT_NE(stamp.find(":00:00+0"), std::string::npos) << stamp;
}

TEST(CronJobNames, AreMinutesSinceTheEpoch) {
  TimePoint t = *parse_rfc3339("2024-01-01T00:05:00Z");
  EXPECT_EQ(cronjob::job_name("tick", t), "tick-28401125");
}

TEST(CronJobSchedule, MostRecentTimeCountsMissedRuns) {
  auto s = CronSchedule::parse("*/10 * * * *");
  ASSERT_TRUE(s.ok());
  json cj = {{"metadata", {{"creationTimestamp", "2024-01-01T00:00:00Z"}}},
             {"spec", json::object()}};
  TimePoint now = *parse_rfc3339("2024-01-01T00:45:00Z");
  auto times = cronjob::most_recent_schedule_time(cj, now, *s, true);
  ASSERT_TRUE(times.most_recent.has_value());
  EXPECT_EQ(format_rfc3339(*times.most_recent), "2024-01-01T00:40:00Z");
  EXPECT_EQ(times.missed, cronjob::ScheduleTimes::Missed::kFew);
  cj["status"]["lastScheduleTime"] = "2024-01-01T00:40:00Z";
  times = cronjob::most_recent_schedule_time(cj, now, *s, true);
  EXPECT_FALSE(times.most_recent.has_value());
  EXPECT_EQ(cronjob::next_schedule_delay(cj, now, *s), 5min + 100ms);
  cj["spec"]["startingDeadlineSeconds"] = 60;
  cj["status"].erase("lastScheduleTime");
  times = cronjob::most_recent_schedule_time(cj, now, *s, true);
  EXPECT_FALSE(times.most_recent.has_value());
}

// `kubectl create job --from=cronjob/...` makes a Job from the template, owned by the CronJob.
TEST_F(CronJobControllerTest, KubectlCreateJobFromCronJob) {
  int rc = 0;
  run_command("kubectl version --client", &rc);
  if (rc != 0) GTEST_SKIP() << "kubectl is not installed";
  std::filesystem::path kubeconfig = server_.dir() / "kubeconfig.yaml";
  ASSERT_TRUE(std::filesystem::exists(kubeconfig));
  std::string kubectl = "kubectl --kubeconfig " + kubeconfig.string() + " --cache-dir " +
                        (server_.dir() / "kubectl-cache").string() + " -n " + kNs + " ";
  create(cron_job("tick", "0 0 1 1 *"));
  std::string out = run_command(kubectl + "create job --from=cronjob/tick manual", &rc);
  ASSERT_EQ(rc, 0) << out;
  auto job = admin_->get(jobs(), "manual");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(text(**job, {"metadata", "annotations", "cronjob.kubernetes.io/instantiate"}),
            "manual");
  EXPECT_EQ((**job)["metadata"]["ownerReferences"][0]["kind"], "CronJob");
  EXPECT_EQ(text(**job, {"metadata", "labels", "app"}), "tick");
  out = run_command(kubectl + "get cronjobs tick --no-headers", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("0 0 1 1 *"), std::string::npos) << out;
}

}  // namespace
}  // namespace skiff::controllers
