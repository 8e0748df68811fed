#include "controllers/job/job_controller.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "common/labels.h"
#include "common/log.h"
#include "controllers/common/batch.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/expectations.h"
#include "controllers/common/job_status.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_util.h"
#include "controllers/job/indexed_job.h"

namespace skiff::controllers::job {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using nlohmann::json;

constexpr const char* kApiVersion = "batch/v1";
constexpr const char* kKind = "Job";
// Keys of pods whose tracking finalizer may have to be removed without their Job.
constexpr std::string_view kOrphanPrefix = "orphan:";
// names.MaxGeneratedNameLength.
constexpr size_t kMaxGeneratedNameLength = 58;

bool is_indexed(const json& job) {
  return cc::string_at(job, {"spec", "completionMode"}) == "Indexed";
}
bool is_suspended(const json& job) { return cc::bool_at(job, {"spec", "suspend"}); }
std::optional<int32_t> completions_of(const json& job) {
  const json* c = cc::find_path(job, {"spec", "completions"});
  if (c == nullptr || !c->is_number_integer()) return std::nullopt;
  return static_cast<int32_t>(std::clamp<int64_t>(c->get<int64_t>(), 0, INT32_MAX));
}
int32_t parallelism_of(const json& job) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(cc::int_at(job, {"spec", "parallelism"}, 1), 0, INT32_MAX));
}
int32_t backoff_limit_of(const json& job) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(cc::int_at(job, {"spec", "backoffLimit"}, 6), 0, INT32_MAX));
}
std::string restart_policy_of(const json& job) {
  return cc::string_at(job, {"spec", "template", "spec", "restartPolicy"});
}
// onlyReplaceFailedPods: new pods wait until the pods they replace have fully terminated.
bool only_replace_failed_pods(const json& job) {
  return cc::string_at(job, {"spec", "podReplacementPolicy"}) == "Failed" ||
         cc::find_path(job, {"spec", "podFailurePolicy"}) != nullptr;
}

std::string phase_of(const json& pod) { return cc::string_at(pod, {"status", "phase"}); }

bool has_tracking_finalizer(const json& pod) {
  const json* f = cc::find_path(pod, {"metadata", "finalizers"});
  if (f == nullptr || !f->is_array()) return false;
  for (const json& v : *f) {
    if (v.is_string() && v.get<std::string>() == kJobTrackingFinalizer) return true;
  }
  return false;
}

// isPodFailed: Failed, or (unless only failed pods are replaced) deleted before succeeding,
// as an orphan pod may never reach the Failed phase.
bool is_pod_failed(const json& pod, const json& job) {
  if (phase_of(pod) == "Failed") return true;
  if (only_replace_failed_pods(job)) return false;
  return cc::being_deleted(pod) && phase_of(pod) != "Succeeded";
}

// controller.IsPodTerminating.
bool is_pod_terminating(const json& pod) {
  std::string phase = phase_of(pod);
  return cc::being_deleted(pod) && phase != "Failed" && phase != "Succeeded";
}

// getFinishedTime: the last container termination, else when the pod stopped being ready,
// else its deletion, else its creation.
TimePoint pod_finish_time(const json& pod) {
  std::optional<TimePoint> latest;
  for (const char* field : {"containerStatuses", "initContainerStatuses"}) {
    const json* statuses = cc::find_path(pod, {"status", field});
    if (statuses == nullptr || !statuses->is_array()) continue;
    for (const json& s : *statuses) {
      auto t = cc::time_at(s, {"state", "terminated", "finishedAt"});
      if (!t) continue;
      TimePoint tp = cc::to_time_point(*t);
      if (!latest || tp > *latest) latest = tp;
    }
  }
  if (latest) return *latest;
  if (const json* ready = cc::pod_ready_condition(pod)) {
    if (cc::string_at(*ready, {"status"}) == "False") {
      if (auto t = cc::time_at(*ready, {"lastTransitionTime"})) return cc::to_time_point(*t);
    }
  }
  if (auto t = cc::time_at(pod, {"metadata", "deletionTimestamp"})) return cc::to_time_point(*t);
  return cc::to_time_point(cc::creation_timestamp(pod));
}

// The restarts of the containers of running and pending pods (pastBackoffLimitOnFailure).
bool past_backoff_limit_on_failure(const json& job, const std::vector<ObjectPtr>& pods) {
  if (restart_policy_of(job) != "OnFailure") return false;
  int64_t restarts = 0;
  for (const ObjectPtr& pod : pods) {
    std::string phase = phase_of(*pod);
    if (phase != "Running" && phase != "Pending") continue;
    for (const char* field : {"initContainerStatuses", "containerStatuses"}) {
      const json* statuses = cc::find_path(*pod, {"status", field});
      if (statuses == nullptr || !statuses->is_array()) continue;
      for (const json& s : *statuses) restarts += cc::int_at(s, {"restartCount"});
    }
  }
  int32_t limit = backoff_limit_of(job);
  return limit == 0 ? restarts > 0 : restarts >= limit;
}

// A JobCondition as newCondition makes it.
json new_job_condition(std::string_view type, std::string_view status, std::string_view reason,
                       std::string_view message, TimePoint now) {
  json c = {{"type", type},
            {"status", status},
            {"lastProbeTime", cc::format_time(now)},
            {"lastTransitionTime", cc::format_time(now)}};
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

json* find_job_condition(json& status, std::string_view type) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) return nullptr;
  for (json& c : status["conditions"]) {
    if (cc::string_at(c, {"type"}) == type) return &c;
  }
  return nullptr;
}

// ensureJobConditionStatus: sets the condition of `type` (replacing it when status, reason or
// message differ; never adding a False one). Returns true when status changed.
bool ensure_job_condition(json& status, std::string_view type, std::string_view cond_status,
                          std::string_view reason, std::string_view message, TimePoint now) {
  if (json* c = find_job_condition(status, type)) {
    if (cc::string_at(*c, {"status"}) != cond_status || cc::string_at(*c, {"reason"}) != reason ||
        cc::string_at(*c, {"message"}) != message) {
      *c = new_job_condition(type, cond_status, reason, message, now);
      return true;
    }
    return false;
  }
  if (cond_status == "False") return false;
  if (!status.contains("conditions") || !status["conditions"].is_array()) {
    status["conditions"] = json::array();
  }
  status["conditions"].push_back(new_job_condition(type, cond_status, reason, message, now));
  return true;
}

bool condition_is_true(const json& status, std::string_view type) {
  const json* conditions = cc::find_path(status, {"conditions"});
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const json& c : *conditions) {
    if (cc::string_at(c, {"type"}) == type && cc::string_at(c, {"status"}) == "True") return true;
  }
  return false;
}

const json* true_condition(const json& status, std::string_view type) {
  const json* conditions = cc::find_path(status, {"conditions"});
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const json& c : *conditions) {
    if (cc::string_at(c, {"type"}) == type && cc::string_at(c, {"status"}) == "True") return &c;
  }
  return nullptr;
}

std::set<std::string> uid_set(const json& status, const char* field) {
  std::set<std::string> out;
  const json* list = cc::find_path(status, {"uncountedTerminatedPods", field});
  if (list == nullptr || !list->is_array()) return out;
  for (const json& v : *list) {
    if (v.is_string()) out.insert(v.get<std::string>());
  }
  return out;
}

void put_omitempty(json& status, const char* field, int64_t value) {
  if (value != 0) {
    status[field] = value;
  } else {
    status.erase(field);
  }
}

// cleanUncountedPodsWithoutFinalizers: uids whose pods no longer carry the finalizer move from
// uncountedTerminatedPods into the counters. Returns true when status changed.
bool clean_uncounted(json& status, const std::set<std::string>& uids_with_finalizer) {
  bool updated = false;
  json& uncounted = status["uncountedTerminatedPods"];
  if (!uncounted.is_object()) uncounted = json::object();
  for (const char* field : {"succeeded", "failed"}) {
    if (!uncounted.contains(field) || !uncounted[field].is_array()) continue;
    json kept = json::array();
    int64_t moved = 0;
    for (const json& uid : uncounted[field]) {
      if (uid.is_string() && uids_with_finalizer.count(uid.get<std::string>()) > 0) {
        kept.push_back(uid);
      } else {
        ++moved;
      }
    }
    if (moved == 0) continue;
    updated = true;
    put_omitempty(status, field, cc::int_at(status, {field}) + moved);
    if (kept.empty()) {
      uncounted.erase(field);
    } else {
      uncounted[field] = std::move(kept);
    }
  }
  return updated;
}

int64_t uncounted_size(const json& status) {
  int64_t n = 0;
  for (const char* field : {"succeeded", "failed"}) {
    const json* list = cc::find_path(status, {"uncountedTerminatedPods", field});
    if (list != nullptr && list->is_array()) n += static_cast<int64_t>(list->size());
  }
  return n;
}

// The strategic merge patch removeTrackingFinalizerPatch sends, bound to the pod's uid.
std::string remove_finalizer_patch(const json& pod) {
  json patch = {{"metadata",
                 {{"$deleteFromPrimitiveList/finalizers", json::array({kJobTrackingFinalizer})},
                  {"uid", cc::uid_of(pod)}}}};
  return patch.dump();
}

// podGenerateNameWithIndex.
std::string generate_name_with_index(const std::string& job_name, int index) {
  std::string suffix = "-" + std::to_string(index) + "-";
  std::string prefix = job_name + suffix;
  if (prefix.size() > kMaxGeneratedNameLength) {
    prefix = job_name.substr(0, kMaxGeneratedNameLength - suffix.size()) + suffix;
  }
  return prefix;
}

// addCompletionIndexEnvVariables: JOB_COMPLETION_INDEX from the index annotation, in every
// container and init container that does not set it.
void add_completion_index_env(json& pod_spec) {
  for (const char* field : {"containers", "initContainers"}) {
    if (!pod_spec.contains(field) || !pod_spec[field].is_array()) continue;
    for (json& container : pod_spec[field]) {
      if (!container.is_object()) continue;
      json& env = container["env"];
      if (!env.is_array()) env = json::array();
      bool present = std::any_of(env.begin(), env.end(), [](const json& e) {
        return cc::string_at(e, {"name"}) == kCompletionIndexEnvName;
      });
      if (present) continue;
      env.push_back({{"name", kCompletionIndexEnvName},
                     {"valueFrom",
                      {{"fieldRef",
                        {{"fieldPath", std::string("metadata.annotations['") +
                                           kJobCompletionIndexAnnotation + "']"}}}}}});
    }
  }
}

bool has_cause(const Status& s, const std::string& reason) {
  for (const auto& c : s.causes()) {
    if (c.reason == reason) return true;
  }
  return false;
}

}  // namespace

std::chrono::nanoseconds pod_failure_backoff_remaining(int failures, TimePoint last_failure,
                                                       TimePoint now,
                                                       std::chrono::milliseconds base,
                                                       std::chrono::milliseconds max) {
  if (failures <= 0) return std::chrono::nanoseconds(0);
  std::chrono::nanoseconds backoff = base;
  for (int i = 1; i < failures; ++i) {
    backoff *= 2;
    if (backoff >= max) {
      backoff = max;
      break;
    }
  }
  std::chrono::nanoseconds elapsed = now - last_failure;
  if (backoff < elapsed) return std::chrono::nanoseconds(0);
  return backoff - elapsed;
}

struct JobController::Impl {
  Impl(ControllerContext& c, JobControllerOptions o) : ctx(c), options(o), expectations(c.clock) {}

  // The pod back-off of one Job (backoffRecord): failures since the last success, and when the
  // last of them happened.
  struct BackoffRecord {
    int failures_after_last_success = 0;
    std::optional<TimePoint> last_failure;
  };

  // What one sync learned (syncJobCtx).
  struct SyncContext {
    json job;
    std::vector<ObjectPtr> pods;
    std::vector<ObjectPtr> active_pods;
    int32_t ready = 0;
    int32_t terminating = 0;
    int64_t succeeded = 0;
    int64_t failed = 0;
    std::set<std::string> uncounted_succeeded;
    std::set<std::string> uncounted_failed;
    std::set<std::string> expected_rm_finalizers;
    OrderedIntervals prev_succeeded_indexes;
    OrderedIntervals succeeded_indexes;
    std::optional<json> finished_condition;
    BackoffRecord new_backoff;
  };

  // --- event handlers: they only enqueue -------------------------------------------------

  void enqueue(const json& job) { queue->add(cc::key_of(job)); }

  void on_job_delete(const json& job) {
    std::string key = cc::key_of(job);
    expectations.delete_expectations(key);
    {
      std::lock_guard<std::mutex> lock(mu);
      finalizer_expectations.erase(key);
    }
    queue->add(key);
    // cleanupPodFinalizers: the pods of a deleted Job must not keep its finalizer.
    for (const ObjectPtr& pod : pod_informer->by_index(cc::kControllerUidIndex, cc::uid_of(job))) {
      if (has_tracking_finalizer(*pod)) enqueue_orphan(*pod);
    }
  }

  void on_job_update(const ObjectPtr& old_obj, const ObjectPtr& cur_obj) {
    if (cc::uid_of(*old_obj) != cc::uid_of(*cur_obj)) on_job_delete(*old_obj);
    enqueue(*cur_obj);
  }

  void enqueue_orphan(const json& pod) { queue->add(std::string(kOrphanPrefix) + cc::key_of(pod)); }

  // resolveControllerRef: the cached Job `ref` points at, if it is that very one.
  ObjectPtr resolve(const std::string& ns, const cc::OwnerReference& ref) const {
    return cc::resolve_controller_ref(*job_informer, kKind, ns, ref);
  }

  // The Job controlling `pod`, or null. An orphan still carrying the tracking finalizer (its
  // Job gone or finished) is queued for release.
  ObjectPtr owner_or_release(const json& pod) {
    auto ref = cc::controller_of(pod);
    ObjectPtr job = ref ? resolve(cc::namespace_of(pod), *ref) : nullptr;
    if (has_tracking_finalizer(pod) && (!job || cc::is_job_finished(*job))) enqueue_orphan(pod);
    return job;
  }

  void finalizer_removal_observed(const std::string& job_key, const std::string& uid) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = finalizer_expectations.find(job_key);
    if (it == finalizer_expectations.end()) return;
    it->second.erase(uid);
    if (it->second.empty()) finalizer_expectations.erase(it);
  }

  void on_pod_add(const ObjectPtr& pod) {
    if (cc::being_deleted(*pod)) {
      on_pod_delete(pod, false);
      return;
    }
    ObjectPtr job = owner_or_release(*pod);
    if (!job) return;
    std::string key = cc::key_of(*job);
    expectations.creation_observed(key);
    queue->add(key);
  }

  void on_pod_update(const ObjectPtr& old_pod, const ObjectPtr& cur_pod) {
    if (cc::resource_version_of(*old_pod) == cc::resource_version_of(*cur_pod)) return;
    if (cc::being_deleted(*cur_pod)) {
      on_pod_delete(cur_pod, false);
      return;
    }
    auto old_ref = cc::controller_of(*old_pod);
    auto cur_ref = cc::controller_of(*cur_pod);
    if (old_ref && old_ref != cur_ref) {
      if (ObjectPtr old_job = resolve(cc::namespace_of(*old_pod), *old_ref)) enqueue(*old_job);
    }
    ObjectPtr job = owner_or_release(*cur_pod);
    if (!job) return;
    std::string key = cc::key_of(*job);
    if (has_tracking_finalizer(*old_pod) && !has_tracking_finalizer(*cur_pod)) {
      finalizer_removal_observed(key, cc::uid_of(*cur_pod));
    }
    queue->add(key);
  }

  // final: the pod is gone (rather than marked for deletion).
  void on_pod_delete(const ObjectPtr& pod, bool final) {
    auto ref = cc::controller_of(*pod);
    ObjectPtr job = ref ? resolve(cc::namespace_of(*pod), *ref) : nullptr;
    if (!final && has_tracking_finalizer(*pod) && (!job || cc::is_job_finished(*job))) {
      enqueue_orphan(*pod);
    }
    if (!job) return;
    std::string key = cc::key_of(*job);
    expectations.deletion_observed(key, cc::key_of(*pod));
    if (final || !has_tracking_finalizer(*pod)) finalizer_removal_observed(key, cc::uid_of(*pod));
    queue->add(key);
  }

  // --- reconcile ---------------------------------------------------------------------------

  void record(const json& job, const char* type, const std::string& reason,
              const std::string& message) {
    ctx.events.record(cc::object_reference(job, kApiVersion, kKind), type, reason, message);
  }

  client::ResourceRef pods_ref(const std::string& ns) const {
    return client::resources::kPods.in(ns);
  }

  // Removes the tracking finalizer; OK when the pod is already gone.
  Status remove_finalizer(const json& pod) {
    if (!has_tracking_finalizer(pod)) return Status::Ok();
    auto r = ctx.client.patch(pods_ref(cc::namespace_of(pod)), cc::name_of(pod),
                              client::PatchType::kStrategicMerge, remove_finalizer_patch(pod));
    if (r.ok() || r.status().is_not_found()) return Status::Ok();
    return r.status();
  }

  // syncOrphanPod: releases a pod whose Job is gone or finished.
  Status sync_orphan(const std::string& pod_key) {
    std::string ns;
    std::string name;
    client::split_key(pod_key, &ns, &name);
    ObjectPtr pod = pod_informer->get(ns, name);
    if (!pod || !has_tracking_finalizer(*pod)) return Status::Ok();
    if (auto ref = cc::controller_of(*pod)) {
      ObjectPtr job = resolve(ns, *ref);
      // Adopted by a running Job: it will count the pod.
      if (job && !cc::is_job_finished(*job)) return Status::Ok();
    }
    return remove_finalizer(*pod);
  }

  std::vector<ObjectPtr> pods_for_job(const json& job, Status* error) {
    std::string ns = cc::namespace_of(job);
    const json* sel = cc::find_path(job, {"spec", "selector"});
    auto selector = LabelSelector::from_json(sel != nullptr ? *sel : json());
    if (!selector.ok()) {
      *error = selector.status();
      return {};
    }
    std::string name = cc::name_of(job);
    std::string uid = cc::uid_of(job);
    cc::ControllerRefManager refs(
        ctx.client, job, cc::new_controller_ref(job, kApiVersion, kKind), *selector, [&] {
          return cc::recheck_owner(ctx.client, client::resources::kJobs.in(ns), kKind, name, uid);
        });
    return refs.claim(pods_ref(ns), pod_informer->list(ns), error);
  }

  // newBackoffRecord: the back-off after the pods that finished since the last sync.
  BackoffRecord new_backoff_record(const std::string& key, std::vector<ObjectPtr> succeeded,
                                   std::vector<ObjectPtr> failed) {
    BackoffRecord record;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = backoffs.find(key);
      if (it != backoffs.end()) record = it->second;
    }
    auto by_finish = [](const ObjectPtr& a, const ObjectPtr& b) {
      return pod_finish_time(*a) < pod_finish_time(*b);
    };
    std::sort(succeeded.begin(), succeeded.end(), by_finish);
    std::sort(failed.begin(), failed.end(), by_finish);
    if (succeeded.empty()) {
      if (failed.empty()) return record;
      record.failures_after_last_success += static_cast<int>(failed.size());
      record.last_failure = pod_finish_time(*failed.back());
      return record;
    }
    record = BackoffRecord{};
    TimePoint last_success = pod_finish_time(*succeeded.back());
    for (auto it = failed.rbegin(); it != failed.rend(); ++it) {
      TimePoint t = pod_finish_time(**it);
      if (t <= last_success) break;
      if (!record.last_failure) record.last_failure = t;
      ++record.failures_after_last_success;
    }
    return record;
  }

  Result<ObjectPtr> write_status(SyncContext& jc) {
    auto updated =
        ctx.client.update(client::resources::kJobs.in(cc::namespace_of(jc.job)), jc.job, "status");
    if (!updated.ok()) return updated.status();
    jc.job = **updated;
    return *updated;
  }

  // Deletes `pods` (DELETE only: their finalizers stay until counted). Returns how many calls
  // succeeded; *ready_deleted counts the ready ones among them.
  int32_t delete_active_pods(const json& job, const std::vector<ObjectPtr>& pods,
                             int32_t* ready_deleted, Status* error) {
    std::atomic<int32_t> ok{0};
    std::atomic<int32_t> ready{0};
    *error = cc::parallel_for(static_cast<int>(pods.size()), [&](int i) -> Status {
      const json& pod = *pods[static_cast<size_t>(i)];
      auto r = ctx.client.remove(pods_ref(cc::namespace_of(pod)), cc::name_of(pod));
      if (!r.ok() && !r.status().is_not_found()) {
        record(job, "Warning", "FailedDelete", "Error deleting: " + r.status().message());
        return r.status();
      }
      if (r.ok()) record(job, "Normal", "SuccessfulDelete", "Deleted pod: " + cc::name_of(pod));
      ok.fetch_add(1);
      if (cc::is_pod_ready(pod)) ready.fetch_add(1);
      return Status::Ok();
    });
    *ready_deleted = ready.load();
    return ok.load();
  }

  // deleteJobPods: removes the finalizer, then deletes, with deletion expectations.
  int32_t delete_job_pods(const json& job, const std::string& key,
                          const std::vector<ObjectPtr>& pods, Status* error) {
    std::vector<std::string> keys;
    for (const ObjectPtr& p : pods) keys.push_back(cc::key_of(*p));
    expectations.expect_deletions(key, keys);
    std::atomic<int32_t> ok{0};
    *error = cc::parallel_for(static_cast<int>(pods.size()), [&](int i) -> Status {
      const json& pod = *pods[static_cast<size_t>(i)];
      Status s = remove_finalizer(pod);
      if (s.ok()) {
        auto r = ctx.client.remove(pods_ref(cc::namespace_of(pod)), cc::name_of(pod));
        if (r.ok()) {
          record(job, "Normal", "SuccessfulDelete", "Deleted pod: " + cc::name_of(pod));
          ok.fetch_add(1);
          return Status::Ok();
        }
        s = r.status();
      }
      // The informer will not observe this deletion (or already has).
      expectations.deletion_observed(key, keys[static_cast<size_t>(i)]);
      if (s.is_not_found()) {
        ok.fetch_add(1);
        return Status::Ok();
      }
      record(job, "Warning", "FailedDelete", "Error deleting: " + s.message());
      return s;
    });
    return ok.load();
  }

  // activePodsForRemoval: for Indexed Jobs first the pods with a bad or repeated index, then
  // the pods Kubernetes would delete first.
  std::vector<ObjectPtr> active_pods_for_removal(const json& job, std::vector<ObjectPtr> pods,
                                                 size_t at_least) {
    TimePoint now = ctx.clock.now();
    auto earlier = [now](const ObjectPtr& a, const ObjectPtr& b) {
      return cc::deletion_precedes(*a, 0, *b, 0, now);
    };
    std::vector<ObjectPtr> rm;
    std::vector<ObjectPtr> left;
    if (is_indexed(job)) {
      int32_t completions = completions_of(job).value_or(0);
      std::map<int, std::vector<ObjectPtr>> by_index;
      for (const ObjectPtr& p : pods) {
        int ix = completion_index(*p);
        if (ix == kUnknownCompletionIndex || ix >= completions) {
          rm.push_back(p);
        } else {
          by_index[ix].push_back(p);
        }
      }
      for (auto& [ix, group] : by_index) {
        std::sort(group.begin(), group.end(), earlier);
        rm.insert(rm.end(), group.begin(), group.end() - 1);
        left.push_back(group.back());
      }
    } else {
      left = std::move(pods);
    }
    if (rm.size() < at_least) {
      std::sort(left.begin(), left.end(), earlier);
      size_t more = std::min(at_least - rm.size(), left.size());
      rm.insert(rm.end(), left.begin(), left.begin() + static_cast<std::ptrdiff_t>(more));
    }
    return rm;
  }

  // firstPendingIndexes: the lowest indexes neither succeeded nor held by an active (or, when
  // only failed pods are replaced, terminating) pod.
  std::vector<int> first_pending_indexes(const SyncContext& jc, int count, int completions) {
    std::vector<int> taken;
    auto add_indexes = [&](const ObjectPtr& p) {
      int ix = completion_index(*p);
      if (ix != kUnknownCompletionIndex && ix < completions) taken.push_back(ix);
    };
    for (const ObjectPtr& p : jc.active_pods) add_indexes(p);
    if (only_replace_failed_pods(jc.job)) {
      for (const ObjectPtr& p : jc.pods) {
        if (is_pod_terminating(*p)) add_indexes(p);
      }
    }
    std::sort(taken.begin(), taken.end());
    taken.erase(std::unique(taken.begin(), taken.end()), taken.end());
    OrderedIntervals non_pending = jc.succeeded_indexes.with_ordered_indexes(taken);
    std::vector<int> out;
    int candidate = 0;
    for (const auto& [first, last] : non_pending.intervals()) {
      for (; candidate < completions && static_cast<int>(out.size()) < count && candidate < first;
           ++candidate) {
        out.push_back(candidate);
      }
      candidate = std::max(candidate, last + 1);
    }
    for (; candidate < completions && static_cast<int>(out.size()) < count; ++candidate) {
      out.push_back(candidate);
    }
    return out;
  }

  Status create_pod(const json& job, const json& pod_template, const cc::OwnerReference& ref,
                    int index) {
    json tmpl = pod_template;
    std::string generate_name;
    if (index != kUnknownCompletionIndex) {
      std::string ix = std::to_string(index);
      json& meta = tmpl["metadata"];
      if (!meta.is_object()) meta = json::object();
      if (!meta["annotations"].is_object()) meta["annotations"] = json::object();
      meta["annotations"][kJobCompletionIndexAnnotation] = ix;
      if (!meta["labels"].is_object()) meta["labels"] = json::object();
      meta["labels"][kJobCompletionIndexAnnotation] = ix;
      tmpl["spec"]["hostname"] = cc::name_of(job) + "-" + ix;
      generate_name = generate_name_with_index(cc::name_of(job), index);
    }
    auto pod = cc::pod_from_template(tmpl, job, ref);
    if (!pod.ok()) return pod.status();
    if (!generate_name.empty()) (*pod)["metadata"]["generateName"] = generate_name;
    auto created = ctx.client.create(pods_ref(cc::namespace_of(job)), *pod);
    if (!created.ok()) {
      // Creations into a namespace being torn down will all fail; nothing to report.
      if (has_cause(created.status(), "NamespaceTerminating")) return Status::Ok();
      record(job, "Warning", "FailedCreate", "Error creating: " + created.status().message());
      return created.status();
    }
    record(job, "Normal", "SuccessfulCreate", "Created pod: " + cc::name_of(**created));
    return Status::Ok();
  }

  // manageJob: creates or deletes pods toward the wanted number of active ones. Returns the
  // number of active pods afterwards.
  int32_t manage_job(SyncContext& jc, const std::string& key, Status* error) {
    const json& job = jc.job;
    int32_t active = static_cast<int32_t>(jc.active_pods.size());
    int32_t parallelism = parallelism_of(job);
    if (is_suspended(job)) {
      int32_t removed = delete_job_pods(job, key, jc.active_pods, error);
      return active - removed;
    }
    int64_t want_active = 0;
    std::optional<int32_t> completions = completions_of(job);
    if (!completions) {
      want_active = jc.succeeded > 0 ? active : parallelism;
    } else {
      want_active = std::clamp<int64_t>(*completions - jc.succeeded, 0, parallelism);
    }
    int64_t rm_at_least = std::max<int64_t>(active - want_active, 0);
    std::vector<ObjectPtr> to_delete =
        active_pods_for_removal(job, jc.active_pods, static_cast<size_t>(rm_at_least));
    if (to_delete.size() > static_cast<size_t>(kMaxPodCreateDeletePerSync)) {
      to_delete.resize(kMaxPodCreateDeletePerSync);
    }
    if (!to_delete.empty()) {
      int32_t removed = delete_job_pods(job, key, to_delete, error);
      return active - removed;
    }
    int64_t terminating = only_replace_failed_pods(job) ? jc.terminating : 0;
    int64_t diff = want_active - terminating - active;
    if (diff <= 0) return active;
    std::chrono::nanoseconds wait{0};
    if (jc.new_backoff.last_failure) {
      wait = pod_failure_backoff_remaining(
          jc.new_backoff.failures_after_last_success, *jc.new_backoff.last_failure, ctx.clock.now(),
          options.pod_failure_backoff, options.max_pod_failure_backoff);
    }
    if (wait > std::chrono::nanoseconds(0)) {
      queue->add_after(key, std::chrono::ceil<std::chrono::milliseconds>(wait));
      return active;
    }
    diff = std::min<int64_t>(diff, kMaxPodCreateDeletePerSync);
    std::vector<int> indexes;
    if (is_indexed(job)) {
      indexes = first_pending_indexes(jc, static_cast<int>(diff), completions.value_or(0));
      diff = static_cast<int64_t>(indexes.size());
    }
    if (diff == 0) return active;
    int count = static_cast<int>(diff);
    expectations.expect_creations(key, count);
    json pod_template = cc::find_path(job, {"spec", "template"}) != nullptr
                            ? job["spec"]["template"]
                            : json::object();
    if (!pod_template["spec"].is_object()) pod_template["spec"] = json::object();
    if (is_indexed(job)) add_completion_index_env(pod_template["spec"]);
    json& finalizers = pod_template["metadata"]["finalizers"];
    if (!finalizers.is_array()) finalizers = json::array();
    if (std::find(finalizers.begin(), finalizers.end(), json(kJobTrackingFinalizer)) ==
        finalizers.end()) {
      finalizers.push_back(kJobTrackingFinalizer);
    }
    cc::OwnerReference ref = cc::new_controller_ref(job, kApiVersion, kKind);
    std::atomic<int> next{0};
    cc::BatchResult result = cc::slow_start_batch(count, cc::kSlowStartInitialBatchSize, [&] {
      int i = next.fetch_add(1);
      int index = indexes.empty() ? kUnknownCompletionIndex : indexes[static_cast<size_t>(i)];
      return create_pod(job, pod_template, ref, index);
    });
    // Creations that failed or never started will not be observed.
    for (int i = result.successes; i < count; ++i) expectations.creation_observed(key);
    *error = result.first_error;
    return active + result.successes;
  }

  Status sync(const std::string& key) {
    if (key.rfind(kOrphanPrefix, 0) == 0) return sync_orphan(key.substr(kOrphanPrefix.size()));
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr cached = job_informer->get(ns, name);
    if (!cached) {
      expectations.delete_expectations(key);
      std::lock_guard<std::mutex> lock(mu);
      finalizer_expectations.erase(key);
      backoffs.erase(key);
      return Status::Ok();
    }
    if (cc::is_job_finished(*cached)) {
      std::lock_guard<std::mutex> lock(mu);
      backoffs.erase(key);
      return Status::Ok();
    }
    std::string mode = cc::string_at(*cached, {"spec", "completionMode"}, "NonIndexed");
    if (mode != "NonIndexed" && mode != "Indexed") {
      record(*cached, "Warning", "UnknownCompletionMode",
             "Skipped Job sync because completion mode is unknown");
      return Status::Ok();
    }

    SyncContext jc;
    jc.job = *cached;
    if (!jc.job["status"].is_object()) jc.job["status"] = json::object();
    json& status = jc.job["status"];
    if (!status["uncountedTerminatedPods"].is_object()) {
      status["uncountedTerminatedPods"] = json::object();
    }
    TimePoint now = ctx.clock.now();

    // Expectations first: a pod created after the listing below must not slip in unseen.
    bool satisfied = expectations.satisfied(key);
    Status claim_error;
    jc.pods = pods_for_job(jc.job, &claim_error);
    if (!claim_error.ok()) return claim_error;
    jc.active_pods = cc::filter_active_pods(jc.pods);
    for (const ObjectPtr& p : jc.active_pods) {
      if (cc::is_pod_ready(*p)) ++jc.ready;
    }
    for (const ObjectPtr& p : jc.pods) {
      if (is_pod_terminating(*p)) ++jc.terminating;
    }
    jc.uncounted_succeeded = uid_set(status, "succeeded");
    jc.uncounted_failed = uid_set(status, "failed");
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = finalizer_expectations.find(key);
      if (it != finalizer_expectations.end()) jc.expected_rm_finalizers = it->second;
    }
    int32_t active = static_cast<int32_t>(jc.active_pods.size());

    // getNewFinishedPods: finished pods still carrying the finalizer and not yet recorded.
    std::vector<ObjectPtr> new_succeeded;
    std::vector<ObjectPtr> new_failed;
    for (const ObjectPtr& p : jc.pods) {
      if (!has_tracking_finalizer(*p)) continue;
      std::string uid = cc::uid_of(*p);
      if (jc.expected_rm_finalizers.count(uid) > 0) continue;
      if (phase_of(*p) == "Succeeded") {
        if (jc.uncounted_succeeded.count(uid) == 0) new_succeeded.push_back(p);
      } else if (is_pod_failed(*p, jc.job)) {
        if (jc.uncounted_failed.count(uid) == 0) new_failed.push_back(p);
      }
    }
    jc.succeeded = cc::int_at(status, {"succeeded"}) + static_cast<int64_t>(new_succeeded.size()) +
                   static_cast<int64_t>(jc.uncounted_succeeded.size());
    jc.failed = cc::int_at(status, {"failed"}) + static_cast<int64_t>(new_failed.size()) +
                static_cast<int64_t>(jc.uncounted_failed.size());

    bool start_time_set = false;
    if (!status.contains("startTime") && !is_suspended(jc.job)) {
      status["startTime"] = cc::format_time(now);
      start_time_set = true;
    }
    jc.new_backoff = new_backoff_record(key, new_succeeded, new_failed);

    if (const json* met = true_condition(status, "SuccessCriteriaMet")) {
      jc.finished_condition = *met;
    } else if (const json* target = true_condition(status, "FailureTarget")) {
      jc.finished_condition =
          new_job_condition("Failed", "True", cc::string_at(*target, {"reason"}),
                            cc::string_at(*target, {"message"}), now);
    } else if (jc.failed > backoff_limit_of(jc.job) ||
               past_backoff_limit_on_failure(jc.job, jc.pods)) {
      jc.finished_condition = new_job_condition("FailureTarget", "True", "BackoffLimitExceeded",
                                                "Job has reached the specified backoff limit", now);
    } else if (past_active_deadline(jc.job, now)) {
      jc.finished_condition =
          new_job_condition("FailureTarget", "True", "DeadlineExceeded",
                            "Job was active longer than specified deadline", now);
    } else if (cc::find_path(jc.job, {"spec", "activeDeadlineSeconds"}) != nullptr &&
               !is_suspended(jc.job)) {
      auto start = cc::time_at(jc.job, {"status", "startTime"});
      if (start) {
        auto deadline = cc::to_time_point(*start) +
                        std::chrono::seconds(cc::int_at(jc.job, {"spec", "activeDeadlineSeconds"}));
        queue->add_after(key, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
      }
    }

    if (is_indexed(jc.job)) {
      int completions = completions_of(jc.job).value_or(0);
      jc.prev_succeeded_indexes =
          OrderedIntervals::parse(cc::string_at(status, {"completedIndexes"}), completions);
      std::vector<int> fresh;
      for (const ObjectPtr& p : jc.pods) {
        int ix = completion_index(*p);
        if (phase_of(*p) == "Succeeded" && ix != kUnknownCompletionIndex && ix < completions &&
            has_tracking_finalizer(*p)) {
          fresh.push_back(ix);
        }
      }
      std::sort(fresh.begin(), fresh.end());
      fresh.erase(std::unique(fresh.begin(), fresh.end()), fresh.end());
      jc.succeeded_indexes = jc.prev_succeeded_indexes.with_ordered_indexes(fresh);
      jc.succeeded = jc.succeeded_indexes.total();
    }

    bool suspend_changed = false;
    Status manage_error;
    if (jc.finished_condition) {
      int32_t ready_deleted = 0;
      int32_t deleted = delete_active_pods(jc.job, jc.active_pods, &ready_deleted, &manage_error);
      // Not finished yet while pods may still appear, or their finalizers are still to go.
      if (deleted != active || !satisfied) jc.finished_condition.reset();
      active -= deleted;
      jc.terminating += deleted;
      jc.ready -= ready_deleted;
    } else {
      bool managed = false;
      if (satisfied && !cc::being_deleted(jc.job)) {
        active = manage_job(jc, key, &manage_error);
        managed = true;
      }
      std::optional<int32_t> completions = completions_of(jc.job);
      bool complete = completions ? jc.succeeded >= *completions && active == 0
                                  : jc.succeeded > 0 && active == 0;
      if (complete) {
        jc.finished_condition =
            new_job_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                              "Reached expected number of succeeded pods", now);
      } else if (managed) {
        json& st = jc.job["status"];
        if (is_suspended(jc.job)) {
          if (ensure_job_condition(st, "Suspended", "True", "JobSuspended", "Job suspended", now)) {
            suspend_changed = true;
            record(jc.job, "Normal", "Suspended", "Job suspended");
          }
        } else if (ensure_job_condition(st, "Suspended", "False", "JobResumed", "Job resumed",
                                        now)) {
          suspend_changed = true;
          record(jc.job, "Normal", "Resumed", "Job resumed");
          // The deadline counts time the Job is continuously active.
          st["startTime"] = cc::format_time(now);
        }
      }
    }

    json& st = jc.job["status"];
    const json* old_status = cc::find_path(*cached, {"status"});
    static const json kEmpty = json::object();
    const json& before = old_status != nullptr ? *old_status : kEmpty;
    bool needs_update =
        suspend_changed || start_time_set || active != cc::int_at(before, {"active"}) ||
        !before.contains("ready") || jc.ready != cc::int_at(before, {"ready"}) ||
        !before.contains("terminating") || jc.terminating != cc::int_at(before, {"terminating"});
    put_omitempty(st, "active", active);
    st["ready"] = jc.ready;
    st["terminating"] = jc.terminating;
    Status tracked = track_status_and_remove_finalizers(jc, key, needs_update);
    if (!tracked.ok()) return Status(tracked.code(), "tracking status: " + tracked.message());
    return manage_error;
  }

  bool past_active_deadline(const json& job, TimePoint now) const {
    const json* deadline = cc::find_path(job, {"spec", "activeDeadlineSeconds"});
    if (deadline == nullptr || !deadline->is_number_integer() || is_suspended(job)) return false;
    auto start = cc::time_at(job, {"status", "startTime"});
    if (!start) return false;
    return now - cc::to_time_point(*start) >= std::chrono::seconds(deadline->get<int64_t>());
  }

  // trackJobStatusAndRemoveFinalizers.
  Status track_status_and_remove_finalizers(SyncContext& jc, const std::string& key,
                                            bool needs_flush) {
    bool indexed = is_indexed(jc.job);
    int completions = completions_of(jc.job).value_or(0);
    std::vector<ObjectPtr> pods = jc.pods;
    if (indexed) {
      std::stable_sort(pods.begin(), pods.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
        return completion_index(*a) < completion_index(*b);
      });
    }
    std::set<std::string> uids_with_finalizer;
    for (const ObjectPtr& p : pods) {
      std::string uid = cc::uid_of(*p);
      if (has_tracking_finalizer(*p) && jc.expected_rm_finalizers.count(uid) == 0) {
        uids_with_finalizer.insert(uid);
      }
    }
    json& status = jc.job["status"];
    if (clean_uncounted(status, uids_with_finalizer)) needs_flush = true;

    std::vector<ObjectPtr> remove_from;
    std::vector<int> new_succeeded_indexes;
    json& uncounted = status["uncountedTerminatedPods"];
    auto append_uid = [&uncounted](const char* field, const std::string& uid) {
      if (!uncounted[field].is_array()) uncounted[field] = json::array();
      uncounted[field].push_back(uid);
    };
    bool failing = jc.finished_condition &&
                   cc::string_at(*jc.finished_condition, {"type"}) != "SuccessCriteriaMet";
    bool reached_max = false;
    for (const ObjectPtr& p : pods) {
      std::string uid = cc::uid_of(*p);
      if (!has_tracking_finalizer(*p) || jc.expected_rm_finalizers.count(uid) > 0) continue;
      bool failed = is_pod_failed(*p, jc.job);
      // canRemoveFinalizer.
      if (!(cc::being_deleted(jc.job) || jc.finished_condition || phase_of(*p) == "Succeeded" ||
            failed)) {
        continue;
      }
      remove_from.push_back(p);
      if (phase_of(*p) == "Succeeded" && jc.uncounted_failed.count(uid) == 0) {
        if (indexed) {
          int ix = completion_index(*p);
          if (ix != kUnknownCompletionIndex && ix < completions &&
              !jc.prev_succeeded_indexes.has(ix)) {
            new_succeeded_indexes.push_back(ix);
            needs_flush = true;
          }
        } else if (jc.uncounted_succeeded.count(uid) == 0) {
          append_uid("succeeded", uid);
          jc.uncounted_succeeded.insert(uid);
          needs_flush = true;
        }
      } else if (failed || failing) {
        // When the Job fails, every pod not terminated counts as failed.
        int ix = completion_index(*p);
        if (jc.uncounted_failed.count(uid) == 0 &&
            (!indexed || (ix != kUnknownCompletionIndex && ix < completions))) {
          append_uid("failed", uid);
          jc.uncounted_failed.insert(uid);
          needs_flush = true;
        }
      }
      if (static_cast<int64_t>(new_succeeded_indexes.size()) + uncounted_size(status) >=
          kMaxUncountedPods) {
        // The status update and pod changes bring the Job back for the rest.
        reached_max = true;
        break;
      }
    }
    if (indexed) {
      std::sort(new_succeeded_indexes.begin(), new_succeeded_indexes.end());
      jc.succeeded_indexes = jc.succeeded_indexes.with_ordered_indexes(new_succeeded_indexes);
      std::string text = jc.succeeded_indexes.to_string();
      if (text != cc::string_at(status, {"completedIndexes"})) needs_flush = true;
      put_omitempty(status, "succeeded", jc.succeeded_indexes.total());
      if (text.empty()) {
        status.erase("completedIndexes");
      } else {
        status["completedIndexes"] = text;
      }
    }
    TimePoint now = ctx.clock.now();
    if (jc.finished_condition &&
        cc::string_at(*jc.finished_condition, {"type"}) == "FailureTarget") {
      if (!status["conditions"].is_array()) status["conditions"] = json::array();
      status["conditions"].push_back(*jc.finished_condition);
      needs_flush = true;
      jc.finished_condition =
          new_job_condition("Failed", "True", cc::string_at(*jc.finished_condition, {"reason"}),
                            cc::string_at(*jc.finished_condition, {"message"}), now);
    }
    if (jc.finished_condition &&
        cc::string_at(*jc.finished_condition, {"type"}) == "SuccessCriteriaMet") {
      if (!condition_is_true(status, "SuccessCriteriaMet")) {
        if (!status["conditions"].is_array()) status["conditions"] = json::array();
        status["conditions"].push_back(*jc.finished_condition);
        needs_flush = true;
      }
      jc.finished_condition =
          new_job_condition("Complete", "True", cc::string_at(*jc.finished_condition, {"reason"}),
                            cc::string_at(*jc.finished_condition, {"message"}), now);
    }

    // flushUncountedAndRemoveFinalizers: record the uids before the finalizers go, so that a
    // pod is counted even if the controller stops in between.
    if (needs_flush) {
      auto written = write_status(jc);
      if (!written.ok()) {
        return Status(written.status().code(),
                      "adding uncounted pods to status: " + written.status().message());
      }
      std::lock_guard<std::mutex> lock(mu);
      backoffs[key] = jc.new_backoff;
      needs_flush = false;
    }
    Status rm_error;
    if (!remove_from.empty()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        for (const ObjectPtr& p : remove_from) finalizer_expectations[key].insert(cc::uid_of(*p));
      }
      std::vector<char> removed(remove_from.size(), 0);
      rm_error = cc::parallel_for(static_cast<int>(remove_from.size()), [&](int i) -> Status {
        const json& pod = *remove_from[static_cast<size_t>(i)];
        Status s = remove_finalizer(pod);
        if (!s.ok()) {
          // No update will show this finalizer gone.
          finalizer_removal_observed(key, cc::uid_of(pod));
          return s;
        }
        removed[static_cast<size_t>(i)] = 1;
        return Status::Ok();
      });
      for (size_t i = 0; i < remove_from.size(); ++i) {
        if (removed[i]) uids_with_finalizer.erase(cc::uid_of(*remove_from[i]));
      }
    }
    json& st = jc.job["status"];
    if (clean_uncounted(st, uids_with_finalizer)) needs_flush = true;
    if (!rm_error.ok()) {
      if (needs_flush) {
        auto written = write_status(jc);
        if (!written.ok()) {
          return Status(written.status().code(),
                        "removing uncounted pods from status: " + written.status().message());
        }
      }
      return rm_error;
    }
    bool finished = !reached_max && enact_job_finished(jc);
    if (finished) needs_flush = true;
    if (needs_flush) {
      auto written = write_status(jc);
      if (!written.ok()) {
        return Status(written.status().code(),
                      "removing uncounted pods from status: " + written.status().message());
      }
      if (finished) record_job_finished(jc);
    }
    return Status::Ok();
  }

  // enactJobFinished: the terminal condition, once every pod is counted and none terminates.
  bool enact_job_finished(SyncContext& jc) {
    if (!jc.finished_condition) return false;
    json& status = jc.job["status"];
    if (uncounted_size(status) > 0) return false;
    if (jc.terminating > 0) return false;
    const json& cond = *jc.finished_condition;
    std::string type = cc::string_at(cond, {"type"});
    TimePoint now = ctx.clock.now();
    ensure_job_condition(status, type, "True", cc::string_at(cond, {"reason"}),
                         cc::string_at(cond, {"message"}), now);
    if (type == "Complete") {
      if (const json* c = find_job_condition(status, "Complete")) {
        status["completionTime"] = (*c)["lastTransitionTime"];
      }
    }
    return true;
  }

  void record_job_finished(const SyncContext& jc) {
    const json& cond = *jc.finished_condition;
    if (cc::string_at(cond, {"type"}) == "Complete") {
      auto completions = completions_of(jc.job);
      if (completions && cc::int_at(jc.job, {"status", "succeeded"}) > *completions) {
        record(jc.job, "Warning", "TooManySucceededPods",
               "Too many succeeded pods running after completion count reached");
      }
      record(jc.job, "Normal", "Completed", "Job completed");
    } else {
      record(jc.job, "Warning", cc::string_at(cond, {"reason"}), cc::string_at(cond, {"message"}));
    }
  }

  // Constant after construction / setup().
  ControllerContext& ctx;
  const JobControllerOptions options;
  WorkQueue* queue = nullptr;
  client::Informer* job_informer = nullptr;
  client::Informer* pod_informer = nullptr;

  cc::ControllerExpectations expectations;  // thread-safe

  std::mutex mu;
  // Per Job key: uids of pods whose finalizer removal was sent but not yet observed.
  std::map<std::string, std::set<std::string>> finalizer_expectations;  // guarded by mu
  std::map<std::string, BackoffRecord> backoffs;                        // guarded by mu
};

JobController::JobController(ControllerContext& ctx, JobControllerOptions options)
    : impl_(std::make_unique<Impl>(ctx, options)) {}

JobController::~JobController() = default;

void JobController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.job_informer = &m.ctx.informers.informer(client::resources::kJobs);
  m.pod_informer = &m.ctx.informers.informer(client::resources::kPods);
  cc::add_controller_uid_index(*m.pod_informer);
  m.job_informer->add_handlers(
      client::InformerHandlers{[&m](const ObjectPtr& job) { m.enqueue(*job); },
                               [&m](const ObjectPtr& old_job, const ObjectPtr& cur_job) {
                                 m.on_job_update(old_job, cur_job);
                               },
                               [&m](const ObjectPtr& job) { m.on_job_delete(*job); }});
  m.pod_informer->add_handlers(
      client::InformerHandlers{[&m](const ObjectPtr& pod) { m.on_pod_add(pod); },
                               [&m](const ObjectPtr& old_pod, const ObjectPtr& cur_pod) {
                                 m.on_pod_update(old_pod, cur_pod);
                               },
                               [&m](const ObjectPtr& pod) { m.on_pod_delete(pod, true); }});
}

Status JobController::reconcile(const std::string& key) { return impl_->sync(key); }

}  // namespace skiff::controllers::job

SKIFF_REGISTER_CONTROLLER(job, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::job::JobController>(ctx);
});
