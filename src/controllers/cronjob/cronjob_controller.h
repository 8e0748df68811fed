// The CronJob controller (Kubernetes 1.32 pkg/controller/cronjob, ControllerV2): creates a Job
// from spec.jobTemplate at each scheduled time.
//
// reconcile("ns/name"):
//  1. deletes the oldest finished Jobs (by status.startTime) beyond
//     successfulJobsHistoryLimit / failedJobsHistoryLimit;
//  2. reconciles status.active with the Jobs it controls: finished ones leave the list
//     (SawCompletedJob), vanished ones too (MissingJob); status.lastSuccessfulTime follows the
//     latest completionTime of a succeeded Job; a running Job it controls that is not listed
//     is reported (UnexpectedJob);
//  3. unless suspended or being deleted, finds the most recent unmet scheduled time (after
//     status.lastScheduleTime, else the CronJob's creation; no earlier than
//     startingDeadlineSeconds ago). A time missed by more than startingDeadlineSeconds is
//     reported (MissSchedule) and skipped; with concurrencyPolicy Forbid nothing starts while
//     a Job is active (JobAlreadyActive); with Replace the active Jobs are deleted first.
//     The Job is named "<cronjob>-<scheduled time in minutes since the epoch>", carries the
//     template's labels and annotations plus batch.kubernetes.io/cronjob-scheduled-timestamp
//     (RFC 3339 in the CronJob's time zone) and a controller reference; it joins
//     status.active and its time becomes status.lastScheduleTime;
//  4. writes status when it changed and comes back at the next scheduled time (plus 100 ms).
// Schedules are evaluated in spec.timeZone (or a TZ= prefix), else in UTC; an unknown zone
// stops scheduling with a Warning UnknownTimeZone event.
// Events (source cronjob-controller): SuccessfulCreate, FailedCreate, SuccessfulDelete,
// FailedDelete, SawCompletedJob, MissingJob, UnexpectedJob, MissSchedule, JobAlreadyActive,
// TooManyMissedTimes, UnparseableSchedule, InvalidSchedule, UnknownTimeZone,
// UnsupportedSchedule.
//
// Thread-safe: reconcile may run on several workers at once (for different keys).
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/time.h"
#include "common/cron_schedule.h"
#include "controllers/framework.h"

namespace skiff::controllers::cronjob {

inline constexpr const char* kCronJobScheduledTimestampAnnotation =
    "batch.kubernetes.io/cronjob-scheduled-timestamp";
// nextScheduleDelta: padding added to requeues against clock skew.
inline constexpr std::chrono::milliseconds kNextScheduleDelta{100};

// getJobName: "<cronjob>-<scheduled time in minutes since the epoch>".
std::string job_name(const std::string& cronjob_name, TimePoint scheduled);

// mostRecentScheduleTime.
struct ScheduleTimes {
  enum class Missed { kNone, kFew, kMany };
  TimePoint earliest;                    // lastScheduleTime, else creationTimestamp
  std::optional<TimePoint> most_recent;  // the latest scheduled time not after now
  Missed missed = Missed::kNone;
  Status error;  // a schedule that never fires twice a second apart ("59 23 31 2 *")
};
ScheduleTimes most_recent_schedule_time(const nlohmann::json& cronjob, TimePoint now,
                                        const CronSchedule& schedule,
                                        bool include_starting_deadline);
// nextScheduleTimeDuration: how long until the next scheduled time, plus kNextScheduleDelta.
std::chrono::nanoseconds next_schedule_delay(const nlohmann::json& cronjob, TimePoint now,
                                             const CronSchedule& schedule);

class CronJobController : public Controller {
 public:
  explicit CronJobController(ControllerContext& ctx);
  ~CronJobController() override;

  std::string name() const override { return "cronjob"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::cronjob
