#include "controllers/replicaset/replica_set_controller.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <utility>

#include "common/labels.h"
#include "common/log.h"
#include "controllers/common/batch.h"
#include "controllers/common/conditions.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_util.h"

namespace skiff::controllers::replicaset {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;

constexpr const char* kApiVersion = "apps/v1";
constexpr const char* kKind = "ReplicaSet";
// updateReplicaSetStatus retries a failed status write once, on a fresh read.
constexpr int kStatusUpdateRetries = 1;

int32_t spec_replicas(const json& rs) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(cc::int_at(rs, {"spec", "replicas"}, 1), 0, INT32_MAX));
}

int32_t min_ready_seconds(const json& rs) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(cc::int_at(rs, {"spec", "minReadySeconds"}), 0, INT32_MAX));
}

void put_count(json& status, const char* field, int64_t value) {
  if (value != 0) {
    status[field] = value;
  } else {
    status.erase(field);
  }
}

bool has_cause(const Status& s, const std::string& reason) {
  for (const auto& c : s.causes()) {
    if (c.reason == reason) return true;
  }
  return false;
}

const json& labels_json(const json& obj) {
  static const json kNull;
  const json* labels = cc::find_path(obj, {"metadata", "labels"});
  return labels != nullptr ? *labels : kNull;
}

}  // namespace

json calculate_status(const json& rs, const std::vector<ObjectPtr>& pods,
                      const Status& manage_error, TimePoint now) {
  const json* current = cc::find_path(rs, {"status"});
  json status = current != nullptr && current->is_object() ? *current : json::object();
  // A pod is fully labeled when it carries every label of the template (the pods of an
  // adopted ReplicaSet may lack some).
  LabelSelector template_labels = LabelSelector::from_set(
      cc::string_map(cc::find_path(rs, {"spec", "template", "metadata", "labels"})));
  int32_t min_ready = min_ready_seconds(rs);
  int64_t fully_labeled = 0;
  int64_t ready = 0;
  int64_t available = 0;
  for (const auto& pod : pods) {
    if (template_labels.matches_json(labels_json(*pod))) ++fully_labeled;
    if (cc::is_pod_ready(*pod)) {
      ++ready;
      if (cc::is_pod_available(*pod, min_ready, now)) ++available;
    }
  }
  const json* failure = cc::find_condition(status, "ReplicaFailure");
  if (!manage_error.ok() && failure == nullptr) {
    int64_t diff = static_cast<int64_t>(pods.size()) - spec_replicas(rs);
    std::string reason = diff < 0 ? "FailedCreate" : diff > 0 ? "FailedDelete" : "";
    cc::set_condition(status, cc::new_condition("ReplicaFailure", "True", reason,
                                                manage_error.message(), now, false));
  } else if (manage_error.ok() && failure != nullptr) {
    cc::remove_condition(status, "ReplicaFailure");
  }
  status["replicas"] = static_cast<int64_t>(pods.size());
  put_count(status, "fullyLabeledReplicas", fully_labeled);
  put_count(status, "readyReplicas", ready);
  put_count(status, "availableReplicas", available);
  return status;
}

bool status_needs_update(const json& rs, const json& new_status) {
  const json* current = cc::find_path(rs, {"status"});
  json old = current != nullptr && current->is_object() ? *current : json::object();
  for (const char* field :
       {"replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"}) {
    if (cc::int_at(old, {field}) != cc::int_at(new_status, {field})) return true;
  }
  if (cc::generation_of(rs) != cc::int_at(old, {"observedGeneration"})) return true;
  json old_conditions = old.value("conditions", json::array());
  json new_conditions = new_status.value("conditions", json::array());
  return old_conditions != new_conditions;
}

struct ReplicaSetController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c), expectations(c.clock) {}

  // --- event handlers: they only enqueue -------------------------------------------------

  void enqueue(const json& rs) { queue->add(cc::key_of(rs)); }

  void on_rs_delete(const json& rs) {
    std::string key = cc::key_of(rs);
    expectations.delete_expectations(key);
    queue->add(key);
  }

  void on_rs_update(const ObjectPtr& old_obj, const ObjectPtr& cur_obj) {
    // A ReplicaSet deleted and re-created under the same name between two events.
    if (cc::uid_of(*old_obj) != cc::uid_of(*cur_obj)) on_rs_delete(*old_obj);
    enqueue(*cur_obj);
  }

  // resolveControllerRef: the cached ReplicaSet `ref` points at, if it is that very one.
  ObjectPtr resolve(const std::string& ns, const cc::OwnerReference& ref) const {
    return cc::resolve_controller_ref(*rs_informer, kKind, ns, ref);
  }

  // getPodReplicaSets: the ReplicaSets whose (non-empty) selector matches an orphan pod.
  std::vector<ObjectPtr> pod_replica_sets(const json& pod) const {
    return cc::selecting_controllers(*rs_informer, pod);
  }

  void on_pod_add(const ObjectPtr& pod) {
    // After a restart a pod may first show up already being deleted.
    if (cc::being_deleted(*pod)) {
      on_pod_delete(pod);
      return;
    }
    if (auto ref = cc::controller_of(*pod)) {
      ObjectPtr rs = resolve(cc::namespace_of(*pod), *ref);
      if (!rs) return;
      std::string key = cc::key_of(*rs);
      expectations.creation_observed(key);
      queue->add(key);
      return;
    }
    // An orphan: every matching ReplicaSet may want to adopt it.
    for (const ObjectPtr& rs : pod_replica_sets(*pod)) enqueue(*rs);
  }

  void on_pod_update(const ObjectPtr& old_pod, const ObjectPtr& cur_pod) {
    if (cc::resource_version_of(*old_pod) == cc::resource_version_of(*cur_pod)) return;
    bool labels_changed = labels_json(*old_pod) != labels_json(*cur_pod);
    if (cc::being_deleted(*cur_pod)) {
      // A pod marked for deletion is as good as gone: count it now, not when it is removed.
      on_pod_delete(cur_pod);
      if (labels_changed) on_pod_delete(old_pod);
      return;
    }
    auto cur_ref = cc::controller_of(*cur_pod);
    auto old_ref = cc::controller_of(*old_pod);
    bool ref_changed = cur_ref != old_ref;
    if (ref_changed && old_ref) {
      if (ObjectPtr rs = resolve(cc::namespace_of(*old_pod), *old_ref)) enqueue(*rs);
    }
    if (cur_ref) {
      ObjectPtr rs = resolve(cc::namespace_of(*cur_pod), *cur_ref);
      if (!rs) return;
      enqueue(*rs);
      // Availability is a matter of time: look again once minReadySeconds have passed.
      int32_t min_ready = min_ready_seconds(*rs);
      if (!cc::is_pod_ready(*old_pod) && cc::is_pod_ready(*cur_pod) && min_ready > 0) {
        queue->add_after(cc::key_of(*rs),
                         std::chrono::seconds(min_ready) + std::chrono::seconds(1));
      }
      return;
    }
    if (labels_changed || ref_changed) {
      for (const ObjectPtr& rs : pod_replica_sets(*cur_pod)) enqueue(*rs);
    }
  }

  void on_pod_delete(const ObjectPtr& pod) {
    auto ref = cc::controller_of(*pod);
    if (!ref) return;
    ObjectPtr rs = resolve(cc::namespace_of(*pod), *ref);
    if (!rs) return;
    std::string key = cc::key_of(*rs);
    expectations.deletion_observed(key, cc::key_of(*pod));
    queue->add(key);
  }

  // --- reconcile ---------------------------------------------------------------------------

  void record(const json& rs, const char* type, const char* reason, const std::string& message) {
    ctx.events.record(cc::object_reference(rs, kApiVersion, kKind), type, reason, message);
  }

  Status create_pod(const json& rs, const cc::OwnerReference& ref) {
    const json* tmpl = cc::find_path(rs, {"spec", "template"});
    auto pod = cc::pod_from_template(tmpl != nullptr ? *tmpl : json::object(), rs, ref);
    if (!pod.ok()) return pod.status();
    auto created = ctx.client.create(client::resources::kPods.in(cc::namespace_of(rs)), *pod);
    if (!created.ok()) {
      // Creations into a namespace being torn down will all fail; nothing to report.
      if (has_cause(created.status(), "NamespaceTerminating")) return Status::Ok();
      record(rs, "Warning", "FailedCreate", "Error creating: " + created.status().message());
      return created.status();
    }
    record(rs, "Normal", "SuccessfulCreate", "Created pod: " + cc::name_of(**created));
    return Status::Ok();
  }

  // getIndirectlyRelatedPods: the pods of every ReplicaSet with the same controller as `rs`
  // (the other revisions of its Deployment), for ranking pods by how doubled up they are.
  std::vector<ObjectPtr> related_pods(const json& rs) const {
    std::vector<ObjectPtr> out;
    auto ref = cc::controller_of(rs);
    if (!ref) return out;
    std::string ns = cc::namespace_of(rs);
    std::vector<ObjectPtr> pods = pod_informer->list(ns);
    std::set<std::string> seen;
    for (const ObjectPtr& related : rs_informer->by_index(cc::kControllerUidIndex, ref->uid)) {
      if (cc::namespace_of(*related) != ns) continue;
      const json* sel = cc::find_path(*related, {"spec", "selector"});
      if (sel == nullptr) continue;
      auto selector = LabelSelector::from_json(*sel);
      if (!selector.ok()) continue;
      for (const ObjectPtr& pod : pods) {
        if (!selector->matches_json(labels_json(*pod))) continue;
        if (seen.insert(cc::uid_of(*pod)).second) out.push_back(pod);
      }
    }
    return out;
  }

  Status manage_replicas(const std::vector<ObjectPtr>& pods, const json& rs,
                         const std::string& key) {
    int64_t diff = static_cast<int64_t>(pods.size()) - spec_replicas(rs);
    if (diff < 0) {
      int count = static_cast<int>(std::min<int64_t>(-diff, kBurstReplicas));
      // Expect the creations before making them: their events may arrive before the calls
      // return.
      expectations.expect_creations(key, count);
      cc::OwnerReference ref = cc::new_controller_ref(rs, kApiVersion, kKind);
      cc::BatchResult result = cc::slow_start_batch(count, cc::kSlowStartInitialBatchSize,
                                                    [&] { return create_pod(rs, ref); });
      // Creations that failed or never started will not be observed.
      for (int i = result.successes; i < count; ++i) expectations.creation_observed(key);
      return result.first_error;
    }
    if (diff > 0) {
      size_t count = static_cast<size_t>(std::min<int64_t>(diff, kBurstReplicas));
      std::vector<ObjectPtr> victims =
          cc::pods_to_delete(pods, related_pods(rs), count, ctx.clock.now());
      std::vector<std::string> keys;
      for (const auto& p : victims) keys.push_back(cc::key_of(*p));
      expectations.expect_deletions(key, keys);
      std::string ns = cc::namespace_of(rs);
      return cc::parallel_for(static_cast<int>(victims.size()), [&](int i) -> Status {
        const json& pod = *victims[static_cast<size_t>(i)];
        auto removed = ctx.client.remove(client::resources::kPods.in(ns), cc::name_of(pod));
        if (removed.ok()) {
          record(rs, "Normal", "SuccessfulDelete", "Deleted pod: " + cc::name_of(pod));
          return Status::Ok();
        }
        // The informer will not see this deletion (or already has): stop waiting for it.
        expectations.deletion_observed(key, keys[static_cast<size_t>(i)]);
        if (removed.status().is_not_found()) return Status::Ok();
        record(rs, "Warning", "FailedDelete", "Error deleting: " + removed.status().message());
        return removed.status();
      });
    }
    return Status::Ok();
  }

  // updateReplicaSetStatus: writes new_status (with observedGeneration) unless nothing
  // changed; on a failed write retries once on a fresh read.
  Result<ObjectPtr> update_status(const ObjectPtr& rs, json new_status) {
    if (!status_needs_update(*rs, new_status)) return rs;
    // The generation acted on, so that a retry cannot claim a newer spec was seen.
    new_status["observedGeneration"] = cc::generation_of(*rs);
    client::ResourceRef ref = client::resources::kReplicaSets.in(cc::namespace_of(*rs));
    json obj = *rs;
    Status last;
    for (int attempt = 0;; ++attempt) {
      obj["status"] = new_status;
      auto updated = ctx.client.update(ref, obj, "status");
      if (updated.ok()) return *updated;
      last = updated.status();
      if (attempt >= kStatusUpdateRetries || last.is_not_found()) break;
      auto fresh = ctx.client.get(ref, cc::name_of(*rs));
      if (!fresh.ok()) return fresh.status();
      obj = **fresh;
    }
    return last;
  }

  Status sync(const std::string& key) {
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr rs = rs_informer->get(ns, name);
    if (!rs) {
      expectations.delete_expectations(key);
      return Status::Ok();
    }
    bool needs_sync = expectations.satisfied(key);
    const json* sel = cc::find_path(*rs, {"spec", "selector"});
    auto selector = LabelSelector::from_json(sel != nullptr ? *sel : json());
    if (!selector.ok()) {
      // Validation rejects such selectors; retrying would not help.
      SKIFF_LOG(Warn) << "replicaset " << key
                      << ": invalid selector: " << selector.status().message();
      return Status::Ok();
    }

    std::vector<ObjectPtr> active = cc::filter_active_pods(pod_informer->list(ns));
    Status claim_error;
    cc::ControllerRefManager refs(
        ctx.client, *rs, cc::new_controller_ref(*rs, kApiVersion, kKind), *selector, [&] {
          return cc::recheck_owner(ctx.client, client::resources::kReplicaSets.in(ns), kKind, name,
                                   cc::uid_of(*rs));
        });
    std::vector<ObjectPtr> pods = refs.claim(client::resources::kPods.in(ns), active, &claim_error);
    if (!claim_error.ok()) return claim_error;

    Status manage_error;
    if (needs_sync && !cc::being_deleted(*rs)) manage_error = manage_replicas(pods, *rs, key);

    TimePoint now = ctx.clock.now();
    auto updated = update_status(rs, calculate_status(*rs, pods, manage_error, now));
    if (!updated.ok()) return updated.status();
    const json& u = **updated;
    int32_t replicas = spec_replicas(u);
    int32_t min_ready = min_ready_seconds(u);
    // Ready pods become available with time, not with an event: come back then.
    if (manage_error.ok() && min_ready > 0 &&
        cc::int_at(u, {"status", "readyReplicas"}) == replicas &&
        cc::int_at(u, {"status", "availableReplicas"}) != replicas) {
      queue->add_after(key, std::chrono::seconds(min_ready));
    }
    return manage_error;
  }

  // Constant after setup().
  ControllerContext& ctx;
  WorkQueue* queue = nullptr;
  client::Informer* rs_informer = nullptr;
  client::Informer* pod_informer = nullptr;

  cc::ControllerExpectations expectations;  // thread-safe
};

ReplicaSetController::ReplicaSetController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

ReplicaSetController::~ReplicaSetController() = default;

void ReplicaSetController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.rs_informer = &m.ctx.informers.informer(client::resources::kReplicaSets);
  m.pod_informer = &m.ctx.informers.informer(client::resources::kPods);
  cc::add_controller_uid_index(*m.rs_informer);
  cc::add_controller_uid_index(*m.pod_informer);
  m.rs_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& rs) { m.enqueue(*rs); },
      [&m](const ObjectPtr& old_rs, const ObjectPtr& cur_rs) { m.on_rs_update(old_rs, cur_rs); },
      [&m](const ObjectPtr& rs) { m.on_rs_delete(*rs); }});
  m.pod_informer->add_handlers(
      client::InformerHandlers{[&m](const ObjectPtr& pod) { m.on_pod_add(pod); },
                               [&m](const ObjectPtr& old_pod, const ObjectPtr& cur_pod) {
                                 m.on_pod_update(old_pod, cur_pod);
                               },
                               [&m](const ObjectPtr& pod) { m.on_pod_delete(pod); }});
}

Status ReplicaSetController::reconcile(const std::string& key) { return impl_->sync(key); }

const common::ControllerExpectations& ReplicaSetController::expectations() const {
  return impl_->expectations;
}

}  // namespace skiff::controllers::replicaset

SKIFF_REGISTER_CONTROLLER(replicaset, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::replicaset::ReplicaSetController>(ctx);
});
