#include "controllers/common/job_status.h"

#include "controllers/common/object_meta.h"

namespace skiff::controllers::common {
namespace {

const json* true_condition(const json& job, std::string_view type) {
  const json* conditions = find_path(job, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const json& c : *conditions) {
    if (string_at(c, {"type"}) == type && string_at(c, {"status"}) == "True") return &c;
  }
  return nullptr;
}

}  // namespace

bool job_condition_true(const json& job, std::string_view type) {
  return true_condition(job, type) != nullptr;
}

std::optional<std::string> job_finished_condition(const json& job) {
  for (const char* type : {"Complete", "Failed"}) {
    if (job_condition_true(job, type)) return std::string(type);
  }
  return std::nullopt;
}

bool is_job_finished(const json& job) { return job_finished_condition(job).has_value(); }

bool is_job_succeeded(const json& job) { return job_condition_true(job, "Complete"); }

std::optional<TimePoint> job_finish_time(const json& job) {
  for (const char* type : {"Complete", "Failed"}) {
    const json* c = true_condition(job, type);
    if (c == nullptr) continue;
    auto t = time_at(*c, {"lastTransitionTime"});
    if (!t) return std::nullopt;
    return to_time_point(*t);
  }
  return std::nullopt;
}

}  // namespace skiff::controllers::common
