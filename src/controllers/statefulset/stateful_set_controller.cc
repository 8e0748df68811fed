#include "controllers/statefulset/stateful_set_controller.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "common/labels.h"
#include "common/log.h"
#include "controllers/common/controller_history.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_util.h"
#include "controllers/statefulset/stateful_set_utils.h"

namespace skiff::controllers::statefulset {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using nlohmann::json;

constexpr const char* kApiVersion = "apps/v1";
constexpr const char* kKind = "StatefulSet";
// RetryOnConflict's default: a handful of attempts.
constexpr int kConflictRetries = 5;

std::string phase_of(const json& pod) { return cc::string_at(pod, {"status", "phase"}); }

int32_t spec_replicas(const json& set) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(cc::int_at(set, {"spec", "replicas"}, 1), 0, INT32_MAX));
}

int32_t min_ready_seconds(const json& set) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(cc::int_at(set, {"spec", "minReadySeconds"}), 0, INT32_MAX));
}

const json& labels_json(const json& obj) {
  static const json kNull;
  const json* labels = cc::find_path(obj, {"metadata", "labels"});
  return labels != nullptr ? *labels : kNull;
}

bool is_running_and_ready(const json& pod) {
  return phase_of(pod) == "Running" && cc::is_pod_ready(pod);
}

bool is_running_and_available(const json& pod, int32_t min_ready, TimePoint now) {
  return phase_of(pod) == "Running" && cc::is_pod_available(pod, min_ready, now);
}

bool is_healthy(const json& pod) { return is_running_and_ready(pod) && !cc::being_deleted(pod); }

// One ordinal of the set: the pod as cached, or the one to create.
struct Replica {
  json pod;
  bool created = false;
};

// The status a pass computes (computeReplicaStatus), adjusted by what it deletes.
struct SetStatus {
  int64_t replicas = 0;
  int64_t ready = 0;
  int64_t available = 0;
  int64_t current = 0;
  int64_t updated = 0;
  std::string current_revision;
  std::string update_revision;
  int32_t collision_count = 0;
  int64_t observed_generation = 0;
};

}  // namespace

struct StatefulSetController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c) {}

  // --- event handlers: they only enqueue -------------------------------------------------

  void enqueue(const json& set) { queue->add(cc::key_of(set)); }

  // resolveControllerRef: the cached StatefulSet `ref` points at, if it is that very one.
  ObjectPtr resolve(const std::string& ns, const cc::OwnerReference& ref) const {
    return cc::resolve_controller_ref(*set_informer, kKind, ns, ref);
  }

  // getStatefulSetsForPod: the sets whose selector matches an orphan pod.
  std::vector<ObjectPtr> matching_sets(const json& pod) const {
    return cc::selecting_controllers(*set_informer, pod);
  }

  void on_pod_add(const ObjectPtr& pod) {
    if (auto ref = cc::controller_of(*pod)) {
      if (ObjectPtr set = resolve(cc::namespace_of(*pod), *ref)) enqueue(*set);
      return;
    }
    for (const ObjectPtr& set : matching_sets(*pod)) enqueue(*set);
  }

  void on_pod_update(const ObjectPtr& old_pod, const ObjectPtr& cur_pod) {
    if (cc::resource_version_of(*old_pod) == cc::resource_version_of(*cur_pod)) return;
    auto cur_ref = cc::controller_of(*cur_pod);
    auto old_ref = cc::controller_of(*old_pod);
    if (old_ref && cur_ref != old_ref) {
      if (ObjectPtr set = resolve(cc::namespace_of(*old_pod), *old_ref)) enqueue(*set);
    }
    if (cur_ref) {
      ObjectPtr set = resolve(cc::namespace_of(*cur_pod), *cur_ref);
      if (!set) return;
      enqueue(*set);
      int32_t min_ready = min_ready_seconds(*set);
      if (!cc::is_pod_ready(*old_pod) && cc::is_pod_ready(*cur_pod) && min_ready > 0) {
        queue->add_after(cc::key_of(*set),
                         std::chrono::seconds(min_ready) + std::chrono::seconds(1));
      }
      return;
    }
    if (labels_json(*old_pod) != labels_json(*cur_pod) || cur_ref != old_ref) {
      for (const ObjectPtr& set : matching_sets(*cur_pod)) enqueue(*set);
    }
  }

  void on_pod_delete(const ObjectPtr& pod) {
    auto ref = cc::controller_of(*pod);
    if (!ref) return;
    if (ObjectPtr set = resolve(cc::namespace_of(*pod), *ref)) enqueue(*set);
  }

  // --- pod control (StatefulPodControl) ----------------------------------------------------

  void record(const json& set, const char* type, const std::string& reason,
              const std::string& message) {
    ctx.events.record(cc::object_reference(set, kApiVersion, kKind), type, reason, message);
  }

  // recordPodEvent: "<verb> Pod p in StatefulSet s successful" or "... failed error: e".
  void record_pod_event(const json& set, const std::string& verb, const std::string& pod,
                        const Status& error) {
    std::string title = verb;
    title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
    if (error.ok()) {
      record(set, "Normal", "Successful" + title,
             verb + " Pod " + pod + " in StatefulSet " + cc::name_of(set) + " successful");
    } else {
      record(set, "Warning", "Failed" + title,
             verb + " Pod " + pod + " in StatefulSet " + cc::name_of(set) +
                 " failed error: " + error.message());
    }
  }

  void record_claim_event(const json& set, const std::string& pod, const std::string& claim,
                          const Status& error) {
    if (error.ok()) {
      record(set, "Normal", "SuccessfulCreate",
             "create Claim " + claim + " Pod " + pod + " in StatefulSet " + cc::name_of(set) +
                 " success");
    } else {
      record(set, "Warning", "FailedCreate",
             "create Claim " + claim + " for Pod " + pod + " in StatefulSet " +
                 cc::name_of(set) + " failed error: " + error.message());
    }
  }

  // createPersistentVolumeClaims: the pod's claims that do not exist yet.
  Status create_claims(const json& set, const json& pod) {
    std::vector<Status> errors;
    std::string ns = cc::namespace_of(set);
    client::ResourceRef ref = client::resources::kPersistentVolumeClaims.in(ns);
    for (const auto& [template_name, claim] : persistent_volume_claims(set, ordinal_of(pod))) {
      std::string name = cc::name_of(claim);
      ObjectPtr existing = pvc_informer->get(ns, name);
      if (existing) {
        if (cc::being_deleted(*existing)) {
          errors.push_back(Status::Conflict("pvc " + name + " is being deleted"));
        }
        continue;
      }
      auto created = ctx.client.create(ref, claim);
      if (created.ok()) {
        record_claim_event(set, cc::name_of(pod), name, Status::Ok());
        continue;
      }
      if (created.status().code() == StatusCode::kAlreadyExists) continue;
      record_claim_event(set, cc::name_of(pod), name, created.status());
      errors.push_back(Status(created.status().code(), "failed to create PVC " + name + ": " +
                                                           created.status().message()));
    }
    return cc::aggregate(errors);
  }

  // CreateStatefulPod: the claims, then the pod.
  Status create_pod(const json& set, const json& pod) {
    Status claims = create_claims(set, pod);
    if (!claims.ok()) {
      record_pod_event(set, "create", cc::name_of(pod), claims);
      return claims;
    }
    auto created = ctx.client.create(client::resources::kPods.in(cc::namespace_of(set)), pod);
    // The cache has not caught up: a later pass sees the pod.
    if (!created.ok() && created.status().code() == StatusCode::kAlreadyExists) {
      return created.status();
    }
    record_pod_event(set, "create", cc::name_of(pod), created.ok() ? Status::Ok() : created.status());
    return created.ok() ? Status::Ok() : created.status();
  }

  Status delete_pod(const json& set, const json& pod) {
    auto removed =
        ctx.client.remove(client::resources::kPods.in(cc::namespace_of(set)), cc::name_of(pod));
    if (!removed.ok() && removed.status().is_not_found()) return Status::Ok();
    Status s = removed.ok() ? Status::Ok() : removed.status();
    record_pod_event(set, "delete", cc::name_of(pod), s);
    return s;
  }

  // UpdateStatefulPod: restores the pod's identity and storage (creating missing claims).
  Status update_pod(const json& set, json pod) {
    client::ResourceRef ref = client::resources::kPods.in(cc::namespace_of(set));
    Status last;
    bool attempted = false;
    for (int attempt = 0; attempt < kConflictRetries; ++attempt) {
      bool consistent = true;
      if (!identity_matches(set, pod)) {
        update_identity(set, pod);
        consistent = false;
      }
      if (!storage_matches(set, pod)) {
        update_storage(set, pod);
        consistent = false;
        Status claims = create_claims(set, pod);
        if (!claims.ok()) {
          last = claims;
          break;
        }
      }
      if (consistent) {
        last = Status::Ok();
        break;
      }
      attempted = true;
      auto updated = ctx.client.update(ref, pod);
      if (updated.ok()) {
        last = Status::Ok();
        break;
      }
      last = updated.status();
      if (last.code() != StatusCode::kConflict) break;
      auto fresh = ctx.client.get(ref, cc::name_of(pod));
      if (!fresh.ok()) {
        last = fresh.status();
        break;
      }
      pod = **fresh;
    }
    if (attempted) record_pod_event(set, "update", cc::name_of(pod), last);
    return last;
  }

  // --- revisions ---------------------------------------------------------------------------

  client::ResourceRef revisions_ref(const std::string& ns) const {
    return client::resources::kControllerRevisions.in(ns);
  }

  Status recheck(const json& set) {
    return cc::recheck_owner(ctx.client,
                             client::resources::kStatefulSets.in(cc::namespace_of(set)), kKind,
                             cc::name_of(set), cc::uid_of(set));
  }

  // ListRevisions + AdoptOrphanRevisions.
  Result<std::vector<ObjectPtr>> list_revisions(const json& set, const LabelSelector& selector) {
    std::string ns = cc::namespace_of(set);
    cc::ControllerRefManager refs(ctx.client, set,
                                  cc::new_controller_ref(set, kApiVersion, kKind), selector,
                                  [&] { return recheck(set); });
    Status error;
    std::vector<ObjectPtr> owned =
        refs.claim(revisions_ref(ns), history_informer->list(ns), &error);
    if (!error.ok()) return error;
    cc::sort_controller_revisions(owned);
    return owned;
  }

  // getStatefulSetRevisions.
  Status set_revisions(const json& set, const std::vector<ObjectPtr>& revisions,
                       ObjectPtr* current, ObjectPtr* update, int32_t* collision_count) {
    *collision_count = static_cast<int32_t>(cc::int_at(set, {"status", "collisionCount"}));
    int64_t next = revisions.empty() ? 1 : cc::revision_number(*revisions.back()) + 1;
    Labels labels = cc::string_map(cc::find_path(set, {"spec", "template", "metadata", "labels"}));
    json candidate = cc::new_controller_revision(
        set, cc::new_controller_ref(set, kApiVersion, kKind), labels, cc::template_patch(set),
        next, *collision_count);
    std::vector<ObjectPtr> equal;
    for (const ObjectPtr& r : revisions) {
      if (cc::equal_revision(*r, candidate)) equal.push_back(r);
    }
    if (!equal.empty() && cc::equal_revision(*revisions.back(), *equal.back())) {
      // Unchanged since the newest revision.
      *update = revisions.back();
    } else if (!equal.empty()) {
      // A template seen before (a rollback): that revision becomes the newest.
      auto renumbered = cc::set_revision_number(ctx.client, *equal.back(), next);
      if (!renumbered.ok()) return renumbered.status();
      *update = *renumbered;
    } else {
      auto created = cc::create_controller_revision(ctx.client, set, candidate, collision_count);
      if (!created.ok()) return created.status();
      *update = *created;
    }
    std::string current_name = cc::string_at(set, {"status", "currentRevision"});
    for (const ObjectPtr& r : revisions) {
      if (cc::name_of(*r) == current_name) {
        *current = r;
        break;
      }
    }
    if (!*current) *current = *update;
    return Status::Ok();
  }

  // truncateHistory.
  Status truncate_history(const json& set, const std::vector<ObjectPtr>& pods,
                          const std::vector<ObjectPtr>& revisions, const ObjectPtr& current,
                          const ObjectPtr& update) {
    std::set<std::string> live;
    if (current) live.insert(cc::name_of(*current));
    if (update) live.insert(cc::name_of(*update));
    for (const ObjectPtr& pod : pods) live.insert(pod_revision(*pod));
    std::vector<ObjectPtr> history;
    for (const ObjectPtr& r : revisions) {
      if (!live.count(cc::name_of(*r))) history.push_back(r);
    }
    int64_t limit = std::max<int64_t>(cc::int_at(set, {"spec", "revisionHistoryLimit"}, 10), 0);
    if (static_cast<int64_t>(history.size()) <= limit) return Status::Ok();
    size_t to_delete = history.size() - static_cast<size_t>(limit);
    for (size_t i = 0; i < to_delete; ++i) {
      auto removed = ctx.client.remove(revisions_ref(cc::namespace_of(set)),
                                       cc::name_of(*history[i]));
      if (!removed.ok() && !removed.status().is_not_found()) return removed.status();
    }
    return Status::Ok();
  }

  // --- the update (updateStatefulSet) ------------------------------------------------------

  // newVersionedStatefulSetPod: ordinals below the partition are made at the current
  // revision, the others at the update revision.
  Result<json> versioned_pod(const json& current_set, const json& update_set,
                             const std::string& current_revision,
                             const std::string& update_revision, int ordinal) {
    bool rolling = cc::string_at(current_set, {"spec", "updateStrategy", "type"}) == "RollingUpdate";
    const json* ru = cc::find_path(current_set, {"spec", "updateStrategy", "rollingUpdate"});
    bool use_current = false;
    if (rolling && (ru == nullptr || ru->is_null())) {
      use_current = ordinal < cc::int_at(current_set, {"status", "currentReplicas"});
    } else if (ru != nullptr && ru->is_object()) {
      use_current = ordinal < cc::int_at(*ru, {"partition"});
    }
    const json& source = use_current ? current_set : update_set;
    auto pod = new_stateful_set_pod(source, ordinal,
                                    cc::new_controller_ref(source, kApiVersion, kKind));
    if (!pod.ok()) return pod.status();
    set_pod_revision(*pod, use_current ? current_revision : update_revision);
    return pod;
  }

  Status update_set(const json& set, const ObjectPtr& current_rev, const ObjectPtr& update_rev,
                    const std::vector<ObjectPtr>& pods, SetStatus* status) {
    const json current_set = apply_revision(set, *current_rev);
    const json update_set = apply_revision(set, *update_rev);
    const std::string current_name = cc::name_of(*current_rev);
    const std::string update_name = cc::name_of(*update_rev);
    TimePoint now = ctx.clock.now();
    int32_t min_ready = min_ready_seconds(set);

    status->observed_generation = cc::generation_of(set);
    status->current_revision = current_name;
    status->update_revision = update_name;
    int replica_count = spec_replicas(set);
    std::vector<Replica> replicas(static_cast<size_t>(replica_count));
    std::vector<ObjectPtr> condemned;
    for (const ObjectPtr& pod : pods) {
      ++status->replicas;
      if (is_running_and_ready(*pod)) {
        ++status->ready;
        if (is_running_and_available(*pod, min_ready, now)) ++status->available;
      }
      if (!cc::being_deleted(*pod)) {
        if (pod_revision(*pod) == current_name) ++status->current;
        if (pod_revision(*pod) == update_name) ++status->updated;
      }
      int ord = ordinal_of(*pod);
      if (ord >= 0 && ord < replica_count) {
        replicas[static_cast<size_t>(ord)] = Replica{*pod, true};
      } else if (ord >= replica_count) {
        condemned.push_back(pod);
      }
    }
    for (int ord = 0; ord < replica_count; ++ord) {
      Replica& r = replicas[static_cast<size_t>(ord)];
      if (r.created) continue;
      auto pod = versioned_pod(current_set, update_set, current_name, update_name, ord);
      if (!pod.ok()) return pod.status();
      r.pod = std::move(*pod);
    }
    std::sort(condemned.begin(), condemned.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
      return ordinal_of(*a) < ordinal_of(*b);
    });
    // The first unhealthy pod, by ordinal, among replicas and condemned alike.
    std::string first_unhealthy;
    for (const Replica& r : replicas) {
      if (!r.created || !is_healthy(r.pod)) {
        first_unhealthy = cc::name_of(r.pod);
        break;
      }
    }
    if (first_unhealthy.empty()) {
      for (const ObjectPtr& p : condemned) {
        if (!is_healthy(*p)) {
          first_unhealthy = cc::name_of(*p);
          break;
        }
      }
    }

    if (cc::being_deleted(set)) return Status::Ok();
    const bool monotonic = cc::string_at(set, {"spec", "podManagementPolicy"}) != "Parallel";

    for (int i = 0; i < replica_count; ++i) {
      Replica& r = replicas[static_cast<size_t>(i)];
      std::string phase = phase_of(r.pod);
      if (r.created && (phase == "Failed" || phase == "Succeeded")) {
        if (!cc::being_deleted(r.pod)) {
          record(set, "Warning", phase == "Failed" ? "RecreatingFailedPod" : "RecreatingTerminatedPod",
                 "StatefulSet " + cc::key_of(set) + " is recreating " +
                     (phase == "Failed" ? "failed" : "terminated") + " Pod " + cc::name_of(r.pod));
          Status deleted = delete_pod(set, r.pod);
          if (!deleted.ok()) return deleted;
          if (pod_revision(r.pod) == current_name) --status->current;
          if (pod_revision(r.pod) == update_name) --status->updated;
        }
        // The replacement is created once the failed pod is gone from the cache.
        if (monotonic) return Status::Ok();
        continue;
      }
      if (!r.created) {
        Status created = create_pod(set, r.pod);
        if (!created.ok()) return created;
        if (monotonic) return Status::Ok();
        continue;
      }
      if (phase == "Pending") {
        // A pod waiting for its claims: create the ones missing.
        Status claims = create_claims(set, r.pod);
        if (!claims.ok()) return claims;
      }
      if (cc::being_deleted(r.pod) && monotonic) return Status::Ok();
      if (!is_running_and_ready(r.pod) && monotonic) return Status::Ok();
      if (!is_running_and_available(r.pod, min_ready, now) && monotonic) return Status::Ok();
      if (identity_matches(update_set, r.pod) && storage_matches(update_set, r.pod)) continue;
      Status updated = update_pod(update_set, r.pod);
      if (!updated.ok()) return updated;
    }

    // Scale down, highest ordinal first.
    for (auto it = condemned.rbegin(); it != condemned.rend(); ++it) {
      const json& pod = **it;
      if (cc::being_deleted(pod)) {
        if (monotonic) return Status::Ok();
        continue;
      }
      bool first = cc::name_of(pod) == first_unhealthy;
      if (!is_running_and_ready(pod) && monotonic && !first) return Status::Ok();
      if (!is_running_and_available(pod, min_ready, now) && monotonic && !first) {
        return Status::Ok();
      }
      Status deleted = delete_pod(set, pod);
      if (!deleted.ok()) return deleted;
      if (pod_revision(pod) == current_name) --status->current;
      if (pod_revision(pod) == update_name) --status->updated;
      if (monotonic) return Status::Ok();
    }

    if (cc::string_at(set, {"spec", "updateStrategy", "type"}) != "RollingUpdate") {
      return Status::Ok();
    }
    int update_min =
        static_cast<int>(cc::int_at(set, {"spec", "updateStrategy", "rollingUpdate", "partition"}));
    for (int target = replica_count - 1; target >= update_min; --target) {
      const Replica& r = replicas[static_cast<size_t>(target)];
      if (!r.created) return Status::Ok();
      if (pod_revision(r.pod) != update_name && !cc::being_deleted(r.pod)) {
        Status deleted = delete_pod(set, r.pod);
        if (deleted.ok()) --status->current;
        return deleted;
      }
      if (!is_healthy(r.pod) || !is_running_and_available(r.pod, min_ready, now)) {
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  // updateStatefulSetStatus: completes a finished rolling update and writes the status when
  // it differs.
  Status write_status(const json& set, SetStatus status) {
    if (cc::string_at(set, {"spec", "updateStrategy", "type"}) == "RollingUpdate" &&
        status.updated == status.replicas && status.ready == status.replicas) {
      status.current = status.updated;
      status.current_revision = status.update_revision;
    }
    const json* cur = cc::find_path(set, {"status"});
    json old = cur != nullptr && cur->is_object() ? *cur : json::object();
    bool inconsistent =
        status.observed_generation > cc::int_at(old, {"observedGeneration"}) ||
        status.replicas != cc::int_at(old, {"replicas"}) ||
        status.current != cc::int_at(old, {"currentReplicas"}) ||
        status.ready != cc::int_at(old, {"readyReplicas"}) ||
        status.updated != cc::int_at(old, {"updatedReplicas"}) ||
        status.available != cc::int_at(old, {"availableReplicas"}) ||
        status.current_revision != cc::string_at(old, {"currentRevision"}) ||
        status.update_revision != cc::string_at(old, {"updateRevision"}) ||
        status.collision_count != cc::int_at(old, {"collisionCount"});
    if (!inconsistent) return Status::Ok();
    client::ResourceRef ref = client::resources::kStatefulSets.in(cc::namespace_of(set));
    json obj = set;
    Status last;
    for (int attempt = 0; attempt < kConflictRetries; ++attempt) {
      json s = obj.value("status", json::object());
      if (!s.is_object()) s = json::object();
      s["observedGeneration"] = status.observed_generation;
      s["replicas"] = status.replicas;
      s["availableReplicas"] = status.available;
      auto put = [&s](const char* f, int64_t v) {
        if (v != 0) {
          s[f] = v;
        } else {
          s.erase(f);
        }
      };
      put("readyReplicas", status.ready);
      put("currentReplicas", status.current);
      put("updatedReplicas", status.updated);
      s["currentRevision"] = status.current_revision;
      s["updateRevision"] = status.update_revision;
      s["collisionCount"] = status.collision_count;
      obj["status"] = std::move(s);
      auto updated = ctx.client.update(ref, obj, "status");
      if (updated.ok()) return Status::Ok();
      last = updated.status();
      if (last.is_not_found()) return Status::Ok();
      if (last.code() != StatusCode::kConflict) return last;
      auto fresh = ctx.client.get(ref, cc::name_of(set));
      if (!fresh.ok()) return fresh.status().is_not_found() ? Status::Ok() : fresh.status();
      obj = **fresh;
    }
    return last;
  }

  Status sync(const std::string& key) {
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr set = set_informer->get(ns, name);
    if (!set) return Status::Ok();
    const json* sel = cc::find_path(*set, {"spec", "selector"});
    auto selector = LabelSelector::from_json(sel != nullptr ? *sel : json());
    if (!selector.ok()) {
      SKIFF_LOG(Warn) << "statefulset " << key
                      << ": invalid selector: " << selector.status().message();
      return Status::Ok();
    }
    auto revisions = list_revisions(*set, *selector);
    if (!revisions.ok()) return revisions.status();

    // getPodsForStatefulSet: the pods named as members, after adoption and release.
    std::vector<ObjectPtr> members;
    for (const ObjectPtr& pod : pod_informer->list(ns)) {
      if (is_member_of(*set, *pod)) members.push_back(pod);
    }
    Status claim_error;
    cc::ControllerRefManager refs(ctx.client, *set,
                                  cc::new_controller_ref(*set, kApiVersion, kKind), *selector,
                                  [&] { return recheck(*set); });
    std::vector<ObjectPtr> pods =
        refs.claim(client::resources::kPods.in(ns), members, &claim_error);
    if (!claim_error.ok()) return claim_error;

    ObjectPtr current;
    ObjectPtr update;
    SetStatus status;
    Status result = set_revisions(*set, *revisions, &current, &update, &status.collision_count);
    if (result.ok()) result = update_set(*set, current, update, pods, &status);
    if (result.ok()) result = write_status(*set, status);
    Status truncated = truncate_history(*set, pods, *revisions, current, update);
    if (result.ok()) result = truncated;
    if (!result.ok()) return result;
    int32_t min_ready = min_ready_seconds(*set);
    if (min_ready > 0 && status.available != spec_replicas(*set)) {
      queue->add_after(key, std::chrono::seconds(min_ready));
    }
    return Status::Ok();
  }

  // Constant after setup().
  ControllerContext& ctx;
  WorkQueue* queue = nullptr;
  client::Informer* set_informer = nullptr;
  client::Informer* pod_informer = nullptr;
  client::Informer* history_informer = nullptr;
  client::Informer* pvc_informer = nullptr;
};

StatefulSetController::StatefulSetController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

StatefulSetController::~StatefulSetController() = default;

void StatefulSetController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.set_informer = &m.ctx.informers.informer(client::resources::kStatefulSets);
  m.pod_informer = &m.ctx.informers.informer(client::resources::kPods);
  m.history_informer = &m.ctx.informers.informer(client::resources::kControllerRevisions);
  m.pvc_informer = &m.ctx.informers.informer(client::resources::kPersistentVolumeClaims);
  cc::add_controller_uid_index(*m.pod_informer);
  m.set_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& set) { m.enqueue(*set); },
      [&m](const ObjectPtr&, const ObjectPtr& set) { m.enqueue(*set); },
      [&m](const ObjectPtr& set) { m.enqueue(*set); }});
  m.pod_informer->add_handlers(
      client::InformerHandlers{[&m](const ObjectPtr& pod) { m.on_pod_add(pod); },
                               [&m](const ObjectPtr& old_pod, const ObjectPtr& cur_pod) {
                                 m.on_pod_update(old_pod, cur_pod);
                               },
                               [&m](const ObjectPtr& pod) { m.on_pod_delete(pod); }});
}

Status StatefulSetController::reconcile(const std::string& key) { return impl_->sync(key); }

}  // namespace skiff::controllers::statefulset

SKIFF_REGISTER_CONTROLLER(statefulset, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::statefulset::StatefulSetController>(ctx);
});
