#include "controllers/cronjob/cronjob_controller.h"

#include <algorithm>
#include <map>
#include <vector>

#include "common/log.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/job_status.h"
#include "controllers/common/object_meta.h"

namespace skiff::controllers::cronjob {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using nlohmann::json;

constexpr const char* kApiVersion = "batch/v1";
constexpr const char* kKind = "CronJob";

int64_t unix_seconds(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

// time.RFC1123Z in UTC: "Mon, 02 Jan 2006 15:04:05 +0000".
std::string format_rfc1123z(TimePoint t) {
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  CivilTime c = civil_from_seconds(unix_seconds(t));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04lld %02d:%02d:%02d +0000", kDays[c.weekday], c.day,
                kMonths[c.month - 1], static_cast<long long>(c.year), c.hour, c.minute, c.second);
  return buf;
}

bool in_active_list(const json& cj, const std::string& uid) {
  const json* active = cc::find_path(cj, {"status", "active"});
  if (active == nullptr || !active->is_array()) return false;
  return std::any_of(active->begin(), active->end(),
                     [&](const json& ref) { return cc::string_at(ref, {"uid"}) == uid; });
}

bool name_in_active_list(const json& cj, const std::string& name) {
  const json* active = cc::find_path(cj, {"status", "active"});
  if (active == nullptr || !active->is_array()) return false;
  return std::any_of(active->begin(), active->end(),
                     [&](const json& ref) { return cc::string_at(ref, {"name"}) == name; });
}

void delete_from_active_list(json& cj, const std::string& uid) {
  json& status = cj["status"];
  if (!status.contains("active") || !status["active"].is_array()) return;
  json kept = json::array();
  for (const json& ref : status["active"]) {
    if (cc::string_at(ref, {"uid"}) != uid) kept.push_back(ref);
  }
  if (kept.empty()) {
    status.erase("active");
  } else {
    status["active"] = std::move(kept);
  }
}

size_t active_count(const json& cj) {
  const json* active = cc::find_path(cj, {"status", "active"});
  return active != nullptr && active->is_array() ? active->size() : 0;
}

// byJobStartTime: started before not started; earlier first; the name breaks ties.
bool started_before(const ObjectPtr& a, const ObjectPtr& b) {
  auto sa = cc::time_at(*a, {"status", "startTime"});
  auto sb = cc::time_at(*b, {"status", "startTime"});
  if (!sa && sb) return false;
  if (sa && !sb) return true;
  if ((!sa && !sb) || *sa == *sb) return cc::name_of(*a) < cc::name_of(*b);
  return sa->seconds != sb->seconds ? sa->seconds < sb->seconds : sa->nanos < sb->nanos;
}

}  // namespace

std::string job_name(const std::string& cronjob_name, TimePoint scheduled) {
  int64_t s = unix_seconds(scheduled);
  // Go's integer division truncates toward zero.
  return cronjob_name + "-" + std::to_string(s / 60);
}

ScheduleTimes most_recent_schedule_time(const json& cj, TimePoint now, const CronSchedule& schedule,
                                        bool include_starting_deadline) {
  ScheduleTimes out;
  out.earliest = cc::to_time_point(cc::creation_timestamp(cj));
  if (auto last = cc::time_at(cj, {"status", "lastScheduleTime"})) {
    out.earliest = cc::to_time_point(*last);
  }
  const json* sds = cc::find_path(cj, {"spec", "startingDeadlineSeconds"});
  if (include_starting_deadline && sds != nullptr && sds->is_number_integer()) {
    // Nothing before this point is scheduled any more.
    TimePoint deadline = now - std::chrono::seconds(sds->get<int64_t>());
    if (deadline > out.earliest) out.earliest = deadline;
  }
  auto t1 = schedule.next(out.earliest);
  if (!t1 || now < *t1) return out;
  auto t2 = schedule.next(*t1);
  if (!t2 || now < *t2) {
    out.most_recent = t1;
    return out;
  }
  // A rough count of missed times: how many periods fit between the first and now.
  int64_t between = std::chrono::round<std::chrono::seconds>(*t2 - *t1).count();
  if (between < 1) {
    out.error = Status::BadRequest("time difference between two schedules is less than 1 second");
    return out;
  }
  int64_t elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - *t1).count();
  int64_t missed = elapsed / between + 1;
  // Step back one more period so that irregular schedules find their true latest time.
  TimePoint potential = *t1 + std::chrono::seconds((missed - 1 - 1) * between);
  std::optional<TimePoint> most_recent;
  for (auto t = schedule.next(potential); t && *t <= now; t = schedule.next(*t)) most_recent = t;
  if (missed > 100) {
    out.missed = ScheduleTimes::Missed::kMany;
  } else if (missed > 0) {
    out.missed = ScheduleTimes::Missed::kFew;
  }
  out.most_recent = most_recent;
  return out;
}

std::chrono::nanoseconds next_schedule_delay(const json& cj, TimePoint now,
                                             const CronSchedule& schedule) {
  ScheduleTimes times = most_recent_schedule_time(cj, now, schedule, false);
  TimePoint from = times.earliest;
  if (!times.error.ok()) {
    from = now;
  } else if (times.most_recent) {
    from = *times.most_recent;
  }
  auto next = schedule.next(from);
  if (!next) return std::chrono::hours(24 * 365);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(*next + kNextScheduleDelta - now);
}

struct CronJobController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c) {}

  // --- event handlers: they only enqueue -------------------------------------------------

  void enqueue(const json& cj) { queue->add(cc::key_of(cj)); }

  void on_job_event(const json& job) {
    auto ref = cc::controller_of(job);
    if (!ref || ref->kind != kKind) return;
    ObjectPtr cj = cronjob_informer->get(cc::namespace_of(job), ref->name);
    if (!cj || cc::uid_of(*cj) != ref->uid) return;
    enqueue(*cj);
  }

  // --- reconcile ---------------------------------------------------------------------------

  void record(const json& cj, const char* type, const std::string& reason,
              const std::string& message) {
    ctx.events.record(cc::object_reference(cj, kApiVersion, kKind), type, reason, message);
  }

  client::ResourceRef jobs_ref(const json& cj) const {
    return client::resources::kJobs.in(cc::namespace_of(cj));
  }

  // deleteJob: deletes the Job (its pods in the background) and drops it from status.active.
  bool delete_job(json& cj, const json& job) {
    client::DeleteOptions o;
    o.propagation_policy = "Background";
    auto removed = ctx.client.remove(jobs_ref(cj), cc::name_of(job), o);
    if (!removed.ok() && !removed.status().is_not_found()) {
      record(cj, "Warning", "FailedDelete", "Deleted job: " + removed.status().message());
      return false;
    }
    delete_from_active_list(cj, cc::uid_of(job));
    record(cj, "Normal", "SuccessfulDelete", "Deleted job " + cc::name_of(job));
    return true;
  }

  bool remove_oldest_jobs(json& cj, std::vector<ObjectPtr> jobs, int64_t max_jobs) {
    bool updated = false;
    int64_t to_delete = static_cast<int64_t>(jobs.size()) - max_jobs;
    if (to_delete <= 0) return false;
    std::sort(jobs.begin(), jobs.end(), started_before);
    for (int64_t i = 0; i < to_delete; ++i) {
      if (delete_job(cj, *jobs[static_cast<size_t>(i)])) updated = true;
    }
    return updated;
  }

  // cleanupFinishedJobs.
  bool cleanup_finished_jobs(json& cj, const std::vector<ObjectPtr>& jobs) {
    const json* succeeded_limit = cc::find_path(cj, {"spec", "successfulJobsHistoryLimit"});
    const json* failed_limit = cc::find_path(cj, {"spec", "failedJobsHistoryLimit"});
    bool has_succeeded_limit = succeeded_limit != nullptr && succeeded_limit->is_number_integer();
    bool has_failed_limit = failed_limit != nullptr && failed_limit->is_number_integer();
    if (!has_succeeded_limit && !has_failed_limit) return false;
    std::vector<ObjectPtr> succeeded;
    std::vector<ObjectPtr> failed;
    for (const ObjectPtr& job : jobs) {
      // A Job already being deleted is on its way out.
      if (cc::being_deleted(*job)) continue;
      auto finished = cc::job_finished_condition(*job);
      if (finished == "Complete") {
        succeeded.push_back(job);
      } else if (finished == "Failed") {
        failed.push_back(job);
      }
    }
    bool updated = false;
    if (has_succeeded_limit && remove_oldest_jobs(cj, succeeded, succeeded_limit->get<int64_t>())) {
      updated = true;
    }
    if (has_failed_limit && remove_oldest_jobs(cj, failed, failed_limit->get<int64_t>())) {
      updated = true;
    }
    return updated;
  }

  // getJobFromTemplate2.
  json job_from_template(const json& cj, TimePoint scheduled, const TimeZone& zone) {
    json job = {{"apiVersion", kApiVersion}, {"kind", "Job"}};
    json& meta = job["metadata"];
    meta = json::object();
    meta["name"] = job_name(cc::name_of(cj), scheduled);
    meta["namespace"] = cc::namespace_of(cj);
    const json* labels = cc::find_path(cj, {"spec", "jobTemplate", "metadata", "labels"});
    if (labels != nullptr && labels->is_object() && !labels->empty()) meta["labels"] = *labels;
    const json* annotations = cc::find_path(cj, {"spec", "jobTemplate", "metadata", "annotations"});
    meta["annotations"] =
        annotations != nullptr && annotations->is_object() ? *annotations : json::object();
    meta["annotations"][kCronJobScheduledTimestampAnnotation] =
        format_rfc3339_in_zone(scheduled, zone);
    meta["ownerReferences"] =
        json::array({cc::new_controller_ref(cj, kApiVersion, kKind).to_json()});
    const json* spec = cc::find_path(cj, {"spec", "jobTemplate", "spec"});
    job["spec"] = spec != nullptr ? *spec : json::object();
    return job;
  }

  void set_last_successful_time(json& cj, const json& job, bool* update) {
    auto completed = cc::time_at(job, {"status", "completionTime"});
    if (!completed) return;
    auto last = cc::time_at(cj, {"status", "lastSuccessfulTime"});
    bool later = !last || completed->seconds > last->seconds ||
                 (completed->seconds == last->seconds && completed->nanos > last->nanos);
    if (later) {
      cj["status"]["lastSuccessfulTime"] = job["status"]["completionTime"];
      *update = true;
    }
  }

  // syncCronJob. *requeue is set when the CronJob should be looked at again at a given time.
  Status sync_cronjob(json& cj, const std::vector<ObjectPtr>& jobs,
                      std::optional<std::chrono::nanoseconds>* requeue, bool* update) {
    TimePoint now = ctx.clock.now();
    std::map<std::string, ObjectPtr> children;
    for (const ObjectPtr& job : jobs) {
      std::string uid = cc::uid_of(*job);
      children[uid] = job;
      bool found = in_active_list(cj, uid);
      bool finished = cc::is_job_finished(*job);
      if (!found && !finished) {
        auto fresh =
            ctx.client.get(client::resources::kCronJobs.in(cc::namespace_of(cj)), cc::name_of(cj));
        if (!fresh.ok()) return fresh.status();
        if (in_active_list(**fresh, uid)) {
          cj = **fresh;
          continue;
        }
        record(cj, "Warning", "UnexpectedJob",
               "Saw a job that the controller did not create or forgot: " + cc::name_of(*job));
      } else if (found && finished) {
        delete_from_active_list(cj, uid);
        record(cj, "Normal", "SawCompletedJob",
               "Saw completed job: " + cc::name_of(*job) +
                   ", condition: " + cc::job_finished_condition(*job).value_or(""));
        *update = true;
      }
      if (cc::is_job_succeeded(*job)) set_last_successful_time(cj, *job, update);
    }
    // An active Job missing from the cache may only be late; ask the API.
    const json* active = cc::find_path(cj, {"status", "active"});
    json listed = active != nullptr && active->is_array() ? *active : json::array();
    for (const json& ref : listed) {
      std::string uid = cc::string_at(ref, {"uid"});
      if (children.count(uid) > 0) continue;
      std::string name = cc::string_at(ref, {"name"});
      auto got = ctx.client.get(jobs_ref(cj), name);
      if (got.ok()) continue;
      if (!got.status().is_not_found()) return got.status();
      record(cj, "Normal", "MissingJob", "Active job went missing: " + name);
      delete_from_active_list(cj, uid);
      *update = true;
    }

    if (cc::being_deleted(cj)) return Status::Ok();

    const json* tz = cc::find_path(cj, {"spec", "timeZone"});
    if (tz != nullptr && tz->is_string()) {
      auto loaded = TimeZone::load(tz->get<std::string>());
      if (!loaded.ok()) {
        record(
            cj, "Warning", "UnknownTimeZone",
            "invalid timeZone: \"" + tz->get<std::string>() + "\": " + loaded.status().message());
        return Status::Ok();
      }
    }
    if (cc::bool_at(cj, {"spec", "suspend"})) return Status::Ok();

    // formatSchedule.
    std::string schedule_text = cc::string_at(cj, {"spec", "schedule"});
    if (schedule_text.find("TZ") != std::string::npos) {
      record(cj, "Warning", "UnsupportedSchedule",
             "CRON_TZ or TZ used in schedule \"" + schedule_text +
                 "\" is not officially supported, see "
                 "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more "
                 "details");
    } else if (tz != nullptr && tz->is_string()) {
      schedule_text = "TZ=" + tz->get<std::string>() + " " + schedule_text;
    }
    auto schedule = CronSchedule::parse(schedule_text);
    if (!schedule.ok()) {
      record(cj, "Warning", "UnparseableSchedule",
             "unparseable schedule: \"" + cc::string_at(cj, {"spec", "schedule"}) +
                 "\" : " + schedule.status().message());
      return Status::Ok();
    }
    // The zone the schedule is evaluated in names the scheduled time too.
    const TimeZone& schedule_zone = schedule->zone();

    // nextScheduleTime.
    ScheduleTimes times = most_recent_schedule_time(cj, now, *schedule, true);
    if (!times.error.ok()) {
      record(cj, "Warning", "InvalidSchedule",
             "invalid schedule: " + cc::string_at(cj, {"spec", "schedule"}) + " : " +
                 times.error.message());
      return Status::Ok();
    }
    if (!times.most_recent || *times.most_recent > now) {
      *requeue = next_schedule_delay(cj, now, *schedule);
      return Status::Ok();
    }
    if (times.missed == ScheduleTimes::Missed::kMany) {
      record(cj, "Warning", "TooManyMissedTimes",
             "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or "
             "check clock skew");
    }
    TimePoint scheduled = *times.most_recent;

    const json* sds = cc::find_path(cj, {"spec", "startingDeadlineSeconds"});
    if (sds != nullptr && sds->is_number_integer() &&
        scheduled + std::chrono::seconds(sds->get<int64_t>()) < now) {
      record(cj, "Warning", "MissSchedule",
             "Missed scheduled time to start a job: " + format_rfc1123z(scheduled));
      *requeue = next_schedule_delay(cj, now, *schedule);
      return Status::Ok();
    }
    std::string name = job_name(cc::name_of(cj), scheduled);
    auto last = cc::time_at(cj, {"status", "lastScheduleTime"});
    if (name_in_active_list(cj, name) ||
        (last && cc::to_time_point(*last) == std::chrono::floor<std::chrono::seconds>(scheduled))) {
      *requeue = next_schedule_delay(cj, now, *schedule);
      return Status::Ok();
    }
    std::string policy = cc::string_at(cj, {"spec", "concurrencyPolicy"}, "Allow");
    if (policy == "Forbid" && active_count(cj) > 0) {
      record(cj, "Normal", "JobAlreadyActive",
             "Not starting job because prior execution is running and concurrency policy is "
             "Forbid");
      *requeue = next_schedule_delay(cj, now, *schedule);
      return Status::Ok();
    }
    if (policy == "Replace") {
      json current = cc::find_path(cj, {"status", "active"}) != nullptr ? cj["status"]["active"]
                                                                        : json::array();
      for (const json& ref : current) {
        std::string active_name = cc::string_at(ref, {"name"});
        auto job = ctx.client.get(jobs_ref(cj), active_name);
        if (!job.ok()) {
          record(cj, "Warning", "FailedGet", "Get job: " + job.status().message());
          return job.status();
        }
        if (!delete_job(cj, **job)) {
          return Status::Internal("could not replace job " + cc::namespace_of(cj) + "/" +
                                  active_name);
        }
        *update = true;
      }
    }

    json request = job_from_template(cj, scheduled, schedule_zone);
    auto created = ctx.client.create(jobs_ref(cj), request);
    ObjectPtr job;
    if (created.ok()) {
      job = *created;
      record(cj, "Normal", "SuccessfulCreate", "Created job " + cc::name_of(*job));
    } else if (created.status().code() == StatusCode::kAlreadyExists) {
      // Created by an earlier pass whose status write was lost: take it up if it is ours.
      auto existing = ctx.client.get(jobs_ref(cj), name);
      if (!existing.ok()) return existing.status();
      if (!cc::is_controlled_by(**existing, cc::uid_of(cj))) return created.status();
      job = *existing;
    } else {
      for (const auto& cause : created.status().causes()) {
        // Creations into a namespace being torn down will all fail; nothing to report.
        if (cause.reason == "NamespaceTerminating") return Status::Ok();
      }
      record(cj, "Warning", "FailedCreate", "Error creating job: " + created.status().message());
      return created.status();
    }
    if (!in_active_list(cj, cc::uid_of(*job)) && !cc::is_job_finished(*job)) {
      json& status = cj["status"];
      if (!status["active"].is_array()) status["active"] = json::array();
      status["active"].push_back(cc::object_reference(*job, kApiVersion, "Job"));
    }
    cj["status"]["lastScheduleTime"] = cc::format_time(scheduled);
    *update = true;
    *requeue = next_schedule_delay(cj, now, *schedule);
    return Status::Ok();
  }

  Status sync(const std::string& key) {
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr cached = cronjob_informer->get(ns, name);
    if (!cached) return Status::Ok();
    std::vector<ObjectPtr> jobs;
    for (const ObjectPtr& job :
         job_informer->by_index(cc::kControllerUidIndex, cc::uid_of(*cached))) {
      if (cc::namespace_of(*job) == ns) jobs.push_back(job);
    }
    json cj = *cached;
    if (!cj["status"].is_object()) cj["status"] = json::object();
    bool update = cleanup_finished_jobs(cj, jobs);
    std::optional<std::chrono::nanoseconds> requeue;
    Status sync_error = sync_cronjob(cj, jobs, &requeue, &update);
    if (update) {
      auto written = ctx.client.update(client::resources::kCronJobs.in(ns), cj, "status");
      if (!written.ok()) return written.status();
    }
    if (requeue) {
      queue->add_after(key, std::max(std::chrono::ceil<std::chrono::milliseconds>(*requeue),
                                     std::chrono::milliseconds(1)));
      return Status::Ok();
    }
    return sync_error;
  }

  // Constant after setup().
  ControllerContext& ctx;
  WorkQueue* queue = nullptr;
  client::Informer* cronjob_informer = nullptr;
  client::Informer* job_informer = nullptr;
};

CronJobController::CronJobController(ControllerContext& ctx) : impl_(std::make_unique<Impl>(ctx)) {}

CronJobController::~CronJobController() = default;

void CronJobController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.cronjob_informer = &m.ctx.informers.informer(client::resources::kCronJobs);
  m.job_informer = &m.ctx.informers.informer(client::resources::kJobs);
  cc::add_controller_uid_index(*m.job_informer);
  m.cronjob_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& cj) { m.enqueue(*cj); },
      [&m](const ObjectPtr&, const ObjectPtr& cj) { m.enqueue(*cj); }, nullptr});
  m.job_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& job) { m.on_job_event(*job); },
      [&m](const ObjectPtr&, const ObjectPtr& job) { m.on_job_event(*job); },
      [&m](const ObjectPtr& job) { m.on_job_event(*job); }});
}

Status CronJobController::reconcile(const std::string& key) { return impl_->sync(key); }

}  // namespace skiff::controllers::cronjob

SKIFF_REGISTER_CONTROLLER(cronjob, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::cronjob::CronJobController>(ctx);
});
