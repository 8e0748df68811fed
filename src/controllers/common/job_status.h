// Reading a batch/v1 Job's outcome, as pkg/controller/job/util does: whether a Job has
// finished and how. Shared by the Job, TTL-after-finished and CronJob controllers.
//
// All functions are pure and thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/time.h"

namespace skiff::controllers::common {

using nlohmann::json;

// True when status.conditions holds a condition of `type` with status "True".
bool job_condition_true(const json& job, std::string_view type);
// util.FinishedCondition: "Complete" or "Failed" when that condition is True; nullopt while the
// Job runs.
std::optional<std::string> job_finished_condition(const json& job);
// util.IsJobFinished.
bool is_job_finished(const json& job);
// util.IsJobSucceeded: the Complete condition is True.
bool is_job_succeeded(const json& job);
// When the Job finished: the lastTransitionTime of its True Complete or Failed condition;
// nullopt while it runs, or when that time is missing.
std::optional<TimePoint> job_finish_time(const json& job);

}  // namespace skiff::controllers::common
