#include "controllers/deployment/deployment_controller.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/labels.h"
#include "common/log.h"
#include "controllers/common/conditions.h"
#include "controllers/common/controller_ref.h"
#include "controllers/common/object_meta.h"
#include "controllers/common/pod_template_hash.h"
#include "controllers/deployment/annotations.h"
#include "controllers/deployment/progress.h"
#include "controllers/deployment/rollout.h"

namespace skiff::controllers::deployment {
namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;

constexpr const char* kApiVersion = "apps/v1";
constexpr const char* kKind = "Deployment";
constexpr const char* kReplicaSetKind = "ReplicaSet";

const json& labels_json(const json& obj) {
  static const json kNull;
  const json* labels = cc::find_path(obj, {"metadata", "labels"});
  return labels != nullptr ? *labels : kNull;
}

const json& template_of(const json& obj) {
  static const json kEmpty = json::object();
  const json* t = cc::find_path(obj, {"spec", "template"});
  return t != nullptr ? *t : kEmpty;
}

json& status_of(json& obj) {
  json& status = obj["status"];
  if (!status.is_object()) status = json::object();
  return status;
}

bool has_cause(const Status& s, const std::string& reason) {
  for (const auto& c : s.causes()) {
    if (c.reason == reason) return true;
  }
  return false;
}

// getRollbackTo: the revision the deprecated rollback annotation asks for.
std::optional<int64_t> rollback_to(const json& d) {
  auto value = cc::annotation(d, kDeprecatedRollbackToAnnotation);
  if (!value || value->empty()) return std::nullopt;
  return cc::parse_int64(*value);  // an invalid one is ignored
}

// The ReplicaSets of one Deployment during a sync: the new one (if any) and the old ones,
// kept current as the sync writes them.
struct ReplicaSets {
  std::optional<json> new_rs;
  std::vector<json> old_rss;

  json* find(const std::string& name) {
    if (new_rs && cc::name_of(*new_rs) == name) return &*new_rs;
    for (json& rs : old_rss) {
      if (cc::name_of(rs) == name) return &rs;
    }
    return nullptr;
  }
  std::optional<ReplicaSetView> new_view() const {
    if (!new_rs) return std::nullopt;
    return ReplicaSetView::from_json(*new_rs);
  }
  std::vector<ReplicaSetView> old_views() const {
    std::vector<ReplicaSetView> out;
    for (const json& rs : old_rss) out.push_back(ReplicaSetView::from_json(rs));
    return out;
  }
  std::vector<ReplicaSetView> all_views() const {
    std::vector<ReplicaSetView> out = old_views();
    if (new_rs) out.push_back(ReplicaSetView::from_json(*new_rs));
    return out;
  }
};

}  // namespace

struct DeploymentController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c) {}

  // --- event handlers: they only enqueue -------------------------------------------------

  void enqueue(const json& d) { queue->add(cc::key_of(d)); }

  // resolveControllerRef: the cached Deployment `ref` points at, if it is that very one.
  ObjectPtr resolve(const std::string& ns, const cc::OwnerReference& ref) const {
    return cc::resolve_controller_ref(*d_informer, kKind, ns, ref);
  }

  // getDeploymentsForReplicaSet: Deployments whose (non-empty) selector matches an orphan.
  std::vector<ObjectPtr> deployments_for_replica_set(const json& rs) const {
    return cc::selecting_controllers(*d_informer, rs);
  }

  void on_rs_add(const ObjectPtr& rs) {
    if (cc::being_deleted(*rs)) {
      on_rs_delete(rs);
      return;
    }
    if (auto ref = cc::controller_of(*rs)) {
      if (ObjectPtr d = resolve(cc::namespace_of(*rs), *ref)) enqueue(*d);
      return;
    }
    for (const ObjectPtr& d : deployments_for_replica_set(*rs)) enqueue(*d);
  }

  void on_rs_update(const ObjectPtr& old_rs, const ObjectPtr& cur_rs) {
    if (cc::resource_version_of(*old_rs) == cc::resource_version_of(*cur_rs)) return;
    auto cur_ref = cc::controller_of(*cur_rs);
    auto old_ref = cc::controller_of(*old_rs);
    bool ref_changed = cur_ref != old_ref;
    if (ref_changed && old_ref) {
      if (ObjectPtr d = resolve(cc::namespace_of(*old_rs), *old_ref)) enqueue(*d);
    }
    if (cur_ref) {
      if (ObjectPtr d = resolve(cc::namespace_of(*cur_rs), *cur_ref)) enqueue(*d);
      return;
    }
    if (ref_changed || labels_json(*old_rs) != labels_json(*cur_rs)) {
      for (const ObjectPtr& d : deployments_for_replica_set(*cur_rs)) enqueue(*d);
    }
  }

  void on_rs_delete(const ObjectPtr& rs) {
    auto ref = cc::controller_of(*rs);
    if (!ref) return;
    if (ObjectPtr d = resolve(cc::namespace_of(*rs), *ref)) enqueue(*d);
  }

  // A Recreate rollout waits for the old pods to be gone: look again when the last one goes.
  void on_pod_delete(const ObjectPtr& pod) {
    auto rs_ref = cc::controller_of(*pod);
    if (!rs_ref || rs_ref->kind != kReplicaSetKind) return;
    std::string ns = cc::namespace_of(*pod);
    ObjectPtr rs = rs_informer->get(ns, rs_ref->name);
    if (!rs || cc::uid_of(*rs) != rs_ref->uid) return;
    auto d_ref = cc::controller_of(*rs);
    if (!d_ref) return;
    ObjectPtr d = resolve(ns, *d_ref);
    if (!d || cc::string_at(*d, {"spec", "strategy", "type"}) != "Recreate") return;
    for (const ObjectPtr& owned : rs_informer->by_index(cc::kControllerUidIndex, cc::uid_of(*d))) {
      if (!pod_informer->by_index(cc::kControllerUidIndex, cc::uid_of(*owned)).empty()) return;
    }
    enqueue(*d);
  }

  // --- writes ------------------------------------------------------------------------------

  void record(const json& d, const char* type, const std::string& reason,
              const std::string& message) {
    ctx.events.record(cc::object_reference(d, kApiVersion, kKind), type, reason, message);
  }

  client::ResourceRef deployments(const json& d) const {
    return client::resources::kDeployments.in(cc::namespace_of(d));
  }
  client::ResourceRef replica_sets(const json& d) const {
    return client::resources::kReplicaSets.in(cc::namespace_of(d));
  }

  // Takes what a write answered into the Deployment being synced, keeping the spec and
  // generation it was read with (so observedGeneration never claims a spec this sync did not
  // act on); the status too when it was the status that was written.
  static void absorb(json& d, const json& written, bool status) {
    d["metadata"]["resourceVersion"] = cc::resource_version_of(written);
    if (const json* a = cc::find_path(written, {"metadata", "annotations"})) {
      d["metadata"]["annotations"] = *a;
    } else if (d["metadata"].is_object()) {
      d["metadata"].erase("annotations");
    }
    if (status) {
      const json* s = cc::find_path(written, {"status"});
      d["status"] = s != nullptr ? *s : json::object();
    }
  }

  Status update_status(json& d) {
    auto updated = ctx.client.update(deployments(d), d, "status");
    if (!updated.ok()) return updated.status();
    absorb(d, **updated, true);
    return Status::Ok();
  }

  // SetDeploymentRevision. The status subresource keeps metadata as it is, so the annotation
  // is written on the Deployment itself (metadata only: the generation does not move).
  Status set_deployment_revision(json& d, const std::string& revision) {
    if (cc::annotation(d, kRevisionAnnotation).value_or("") == revision) return Status::Ok();
    json patch = {{"metadata", {{"annotations", {{std::string(kRevisionAnnotation), revision}}}}}};
    auto patched =
        ctx.client.patch(deployments(d), cc::name_of(d), client::PatchType::kMerge, to_json(patch));
    if (!patched.ok()) return patched.status();
    absorb(d, **patched, false);
    return Status::Ok();
  }

  // scaleReplicaSet: sets rs's size and replica annotations when either differs; records
  // ScalingReplicaSet when the size changed. *scaled says whether it did.
  Status scale_replica_set(json& rs, int32_t new_scale, const json& d, const std::string& op,
                           bool* scaled) {
    if (scaled != nullptr) *scaled = false;
    DeploymentView dv = DeploymentView::from_json(d);
    int32_t desired = dv.replicas;
    int32_t max = dv.replicas + max_surge(dv);
    int64_t old_scale = cc::int_at(rs, {"spec", "replicas"}, 1);
    bool size_changes = old_scale != new_scale;
    if (!size_changes && !replicas_annotations_need_update(rs, desired, max)) {
      return Status::Ok();
    }
    json copy = rs;
    copy["spec"]["replicas"] = new_scale;
    set_replicas_annotations(copy, desired, max);
    auto updated = ctx.client.update(replica_sets(d), copy);
    if (!updated.ok()) return updated.status();
    rs = **updated;
    if (size_changes) {
      if (scaled != nullptr) *scaled = true;
      record(d, "Normal", "ScalingReplicaSet",
             "Scaled " + op + " replica set " + cc::name_of(rs) + " from " +
                 std::to_string(old_scale) + " to " + std::to_string(new_scale));
    }
    return Status::Ok();
  }

  // scaleReplicaSetAndRecordEvent: nothing to do when the size is right.
  Status scale_and_record(json& rs, int32_t new_scale, const json& d, bool* scaled) {
    if (scaled != nullptr) *scaled = false;
    int64_t current = cc::int_at(rs, {"spec", "replicas"}, 1);
    if (current == new_scale) return Status::Ok();
    return scale_replica_set(rs, new_scale, d, current < new_scale ? "up" : "down", scaled);
  }

  // How a step is carried out: kResize leaves a ReplicaSet of the right size alone (the
  // rollout steps); kResizeOrAnnotate also brings its replica annotations up to date (the
  // steps of a scaling event, as sync.go scale does).
  enum class StepMode { kResize, kResizeOrAnnotate };

  Status apply(ReplicaSets& sets, const ScaleStep& step, const json& d, StepMode mode,
               bool* scaled) {
    json* rs = sets.find(step.name);
    if (rs == nullptr) return Status::Internal("replica set " + step.name + " vanished mid-sync");
    if (mode == StepMode::kResize) return scale_and_record(*rs, step.to, d, scaled);
    return scale_replica_set(*rs, step.to, d, step.operation, scaled);
  }

  // --- reading the Deployment's ReplicaSets -------------------------------------------------

  // getReplicaSetsForDeployment: claims the namespace's ReplicaSets.
  Result<std::vector<json>> claim_replica_sets(const json& d) {
    std::string ns = cc::namespace_of(d);
    std::string name = cc::name_of(d);
    const json* sel = cc::find_path(d, {"spec", "selector"});
    auto selector = LabelSelector::from_json(sel != nullptr ? *sel : json());
    if (!selector.ok()) {
      return Status::BadRequest("deployment " + ns + "/" + name +
                                " has invalid label selector: " + selector.status().message());
    }
    std::string uid = cc::uid_of(d);
    cc::ControllerRefManager refs(
        ctx.client, d, cc::new_controller_ref(d, kApiVersion, kKind), *selector,
        [&] { return cc::recheck_owner(ctx.client, deployments(d), kKind, name, uid); });
    Status error;
    std::vector<ObjectPtr> claimed = refs.claim(replica_sets(d), rs_informer->list(ns), &error);
    if (!error.ok()) return error;
    std::vector<json> out;
    out.reserve(claimed.size());
    for (const auto& rs : claimed) out.push_back(*rs);
    return out;
  }

  // FindNewReplicaSet: the oldest ReplicaSet whose template is the Deployment's.
  static std::optional<size_t> find_new(const json& d, const std::vector<json>& rs_list) {
    std::vector<size_t> order(rs_list.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return cc::created_before(rs_list[a], rs_list[b]);
    });
    for (size_t i : order) {
      if (cc::equal_ignore_hash(template_of(rs_list[i]), template_of(d))) return i;
    }
    return std::nullopt;
  }

  // getNewReplicaSet: the existing new ReplicaSet brought up to date (revision, annotations,
  // minReadySeconds), or a new one created when `create`; nullopt when there is none and
  // `create` is false. What it writes replaces (or joins) its entry in rs_list, so that a
  // second look in the same sync does not write again.
  Result<std::optional<json>> new_replica_set(json& d, std::vector<json>& rs_list,
                                              const std::vector<json>& old_rss, bool create) {
    std::optional<size_t> existing = find_new(d, rs_list);
    std::vector<ReplicaSetView> old_views;
    for (const json& rs : old_rss) old_views.push_back(ReplicaSetView::from_json(rs));
    std::string new_revision = std::to_string(max_revision(old_views) + 1);
    DeploymentView dv = DeploymentView::from_json(d);
    int32_t desired = dv.replicas;
    int32_t max = dv.replicas + max_surge(dv);
    int64_t min_ready = cc::int_at(d, {"spec", "minReadySeconds"});

    if (existing) {
      json rs = rs_list[*existing];
      bool annotations_updated =
          set_new_replica_set_annotations(d, rs, new_revision, true, desired, max);
      bool min_ready_changed = cc::int_at(rs, {"spec", "minReadySeconds"}) != min_ready;
      if (annotations_updated || min_ready_changed) {
        if (min_ready != 0) {
          rs["spec"]["minReadySeconds"] = min_ready;
        } else {
          rs["spec"].erase("minReadySeconds");
        }
        auto updated = ctx.client.update(replica_sets(d), rs);
        if (!updated.ok()) return updated.status();
        rs_list[*existing] = **updated;
        return std::optional<json>(**updated);
      }
      if (Status s =
              set_deployment_revision(d, cc::annotation(rs, kRevisionAnnotation).value_or(""));
          !s.ok()) {
        return s;
      }
      // A Deployment that gained a progress deadline starts counting from here.
      if (has_progress_deadline(dv) &&
          cc::find_condition(status_of(d), kConditionProgressing) == nullptr) {
        cc::set_condition(status_of(d),
                          cc::new_condition(kConditionProgressing, "True", kReasonFoundNewRS,
                                            "Found new replica set \"" + cc::name_of(rs) + "\"",
                                            ctx.clock.now(), true));
        if (Status s = update_status(d); !s.ok()) return s;
      }
      return std::optional<json>(std::move(rs));
    }
    if (!create) return std::optional<json>();

    // A new ReplicaSet for the current template.
    std::optional<int32_t> collision_count;
    if (const json* c = cc::find_path(d, {"status", "collisionCount"});
        c != nullptr && c->is_number_integer()) {
      collision_count = static_cast<int32_t>(cc::int_at(*c, {}));
    }
    std::string hash = cc::compute_hash(template_of(d), collision_count);
    json tmpl = template_of(d);
    json& tmpl_labels = tmpl["metadata"]["labels"];
    if (!tmpl_labels.is_object()) tmpl_labels = json::object();
    tmpl_labels[std::string(cc::kPodTemplateHashLabel)] = hash;
    const json* sel = cc::find_path(d, {"spec", "selector"});
    json selector = sel != nullptr && sel->is_object() ? *sel : json::object();
    json& match_labels = selector["matchLabels"];
    if (!match_labels.is_object()) match_labels = json::object();
    match_labels[std::string(cc::kPodTemplateHashLabel)] = hash;
    std::string rs_name = cc::name_of(d) + "-" + hash;
    json rs = {{"apiVersion", kApiVersion},
               {"kind", kReplicaSetKind},
               {"metadata",
                {{"name", rs_name},
                 {"namespace", cc::namespace_of(d)},
                 {"labels", tmpl_labels},
                 {"ownerReferences",
                  json::array({cc::new_controller_ref(d, kApiVersion, kKind).to_json()})}}},
               {"spec", {{"replicas", 0}, {"selector", selector}, {"template", tmpl}}}};
    if (min_ready != 0) rs["spec"]["minReadySeconds"] = min_ready;

    std::vector<ReplicaSetView> all = old_views;
    ReplicaSetView new_view = ReplicaSetView::from_json(rs);
    all.push_back(new_view);
    auto new_replicas = new_rs_new_replicas(dv, all, new_view);
    if (!new_replicas.ok()) return new_replicas.status();
    rs["spec"]["replicas"] = *new_replicas;
    set_new_replica_set_annotations(d, rs, new_revision, false, desired, max);

    json created_rs;
    bool already_exists = false;
    auto created = ctx.client.create(replica_sets(d), rs);
    if (created.ok()) {
      created_rs = **created;
    } else if (created.status().code() == StatusCode::kAlreadyExists) {
      already_exists = true;
      auto found = ctx.client.get(replica_sets(d), rs_name);
      if (!found.ok()) return found.status();
      const json& other = **found;
      if (cc::is_controlled_by(other, cc::uid_of(d)) &&
          cc::equal_ignore_hash(template_of(d), template_of(other))) {
        created_rs = other;  // ours, from a sync whose answer was lost
      } else {
        // A hash collision: another template, or someone else's object, has the name. A
        // higher collisionCount gives the next attempt another hash.
        json& status = status_of(d);
        status["collisionCount"] = cc::int_at(status, {"collisionCount"}) + 1;
        if (update_status(d).ok()) {
          SKIFF_LOG(Info) << "deployment " << cc::key_of(d) << ": hash collision on replica set "
                          << rs_name << ", collisionCount now "
                          << status_of(d).value("collisionCount", 0);
        }
        return created.status();
      }
    } else if (has_cause(created.status(), "NamespaceTerminating")) {
      return created.status();
    } else {
      std::string msg =
          "Failed to create new replica set \"" + rs_name + "\": " + created.status().message();
      if (has_progress_deadline(dv)) {
        cc::set_condition(status_of(d),
                          cc::new_condition(kConditionProgressing, "False", kReasonFailedRSCreate,
                                            msg, ctx.clock.now(), true));
        (void)update_status(d);  // the create error is what matters
      }
      record(d, "Warning", std::string(kReasonFailedRSCreate), msg);
      return created.status();
    }
    if (!already_exists && *new_replicas > 0) {
      record(d, "Normal", "ScalingReplicaSet",
             "Scaled up replica set " + rs_name + " from 0 to " + std::to_string(*new_replicas));
    }
    rs_list.push_back(created_rs);
    if (Status s = set_deployment_revision(d, new_revision); !s.ok()) return s;
    if (!already_exists && has_progress_deadline(dv)) {
      cc::set_condition(
          status_of(d),
          cc::new_condition(kConditionProgressing, "True", kReasonNewRSCreated,
                            "Created new replica set \"" + rs_name + "\"", ctx.clock.now(), true));
      if (Status s = update_status(d); !s.ok()) return s;
    }
    return std::optional<json>(std::move(created_rs));
  }

  // getAllReplicaSetsAndSyncRevision.
  Result<ReplicaSets> all_replica_sets(json& d, std::vector<json>& rs_list, bool create) {
    std::optional<size_t> new_index = find_new(d, rs_list);
    ReplicaSets sets;
    for (size_t i = 0; i < rs_list.size(); ++i) {
      if (new_index && i == *new_index) continue;
      sets.old_rss.push_back(rs_list[i]);
    }
    auto new_rs = new_replica_set(d, rs_list, sets.old_rss, create);
    if (!new_rs.ok()) return new_rs.status();
    sets.new_rs = std::move(*new_rs);
    return sets;
  }

  // --- status --------------------------------------------------------------------------------

  // syncDeploymentStatus.
  Status sync_deployment_status(json& d, const ReplicaSets& sets) {
    std::optional<ReplicaSetView> nv = sets.new_view();
    json status = calculate_status(d, sets.all_views(), nv ? &*nv : nullptr, ctx.clock.now());
    if (status_equal(status_of(d), status)) return Status::Ok();
    d["status"] = std::move(status);
    return update_status(d);
  }

  // syncRolloutStatus.
  Status sync_rollout_status(json& d, const ReplicaSets& sets) {
    std::optional<ReplicaSetView> nv = sets.new_view();
    TimePoint now = ctx.clock.now();
    json status = rollout_status(d, sets.all_views(), nv ? &*nv : nullptr, now);
    if (status_equal(status_of(d), status)) {
      // Nothing changed: make sure the deadline gets checked when it passes.
      if (auto after = stuck_requeue_after(d, status, now)) {
        queue->add_after(cc::key_of(d), *after);
      }
      return Status::Ok();
    }
    d["status"] = std::move(status);
    return update_status(d);
  }

  // checkPausedConditions: Progressing Unknown DeploymentPaused / DeploymentResumed, so
  // that time spent paused does not count against the progress deadline.
  Status check_paused_conditions(json& d) {
    DeploymentView dv = DeploymentView::from_json(d);
    if (!has_progress_deadline(dv)) return Status::Ok();
    const json* cond = cc::find_condition(status_of(d), kConditionProgressing);
    std::string reason = cond != nullptr ? cc::string_at(*cond, {"reason"}) : "";
    if (reason == kReasonTimedOut) return Status::Ok();  // keep reporting the failure
    bool paused_recorded = reason == kReasonPaused;
    if (dv.paused && !paused_recorded) {
      cc::set_condition(status_of(d),
                        cc::new_condition(kConditionProgressing, "Unknown", kReasonPaused,
                                          "Deployment is paused", ctx.clock.now(), true));
    } else if (!dv.paused && paused_recorded) {
      cc::set_condition(status_of(d),
                        cc::new_condition(kConditionProgressing, "Unknown", kReasonResumed,
                                          "Deployment is resumed", ctx.clock.now(), true));
    } else {
      return Status::Ok();
    }
    return update_status(d);
  }

  // --- the strategies -----------------------------------------------------------------------

  // cleanupDeployment.
  Status cleanup(const json& d, const ReplicaSets& sets) {
    for (const std::string& name : plan_cleanup(DeploymentView::from_json(d), sets.old_views())) {
      auto removed = ctx.client.remove(replica_sets(d), name);
      if (!removed.ok() && !removed.status().is_not_found()) return removed.status();
    }
    return Status::Ok();
  }

  // sync: scaling events and paused Deployments.
  Status sync_scaling(json& d, std::vector<json>& rs_list) {
    auto sets = all_replica_sets(d, rs_list, false);
    if (!sets.ok()) return sets.status();
    std::optional<ReplicaSetView> nv = sets->new_view();
    for (const ScaleStep& step :
         plan_scale(DeploymentView::from_json(d), nv ? &*nv : nullptr, sets->old_views())) {
      if (Status s = apply(*sets, step, d, StepMode::kResizeOrAnnotate, nullptr); !s.ok()) return s;
    }
    if (cc::bool_at(d, {"spec", "paused"}) && !rollback_to(d)) {
      if (Status s = cleanup(d, *sets); !s.ok()) return s;
    }
    return sync_deployment_status(d, *sets);
  }

  Status rollout_rolling(json& d, std::vector<json>& rs_list) {
    auto sets = all_replica_sets(d, rs_list, true);
    if (!sets.ok()) return sets.status();
    if (!sets->new_rs) return Status::Internal("no new replica set after creating it");
    DeploymentView dv = DeploymentView::from_json(d);

    auto up = plan_new_replica_set(dv, sets->all_views(), *sets->new_view());
    if (!up.ok()) return up.status();
    if (*up) {
      bool scaled = false;
      if (Status s = apply(*sets, **up, d, StepMode::kResize, &scaled); !s.ok()) return s;
      if (scaled) return sync_rollout_status(d, *sets);
    }

    bool scaled_down = false;
    for (const ScaleStep& step : plan_old_replica_sets(dv, sets->old_views(), *sets->new_view())) {
      bool scaled = false;
      if (Status s = apply(*sets, step, d, StepMode::kResize, &scaled); !s.ok()) return s;
      scaled_down = scaled_down || scaled;
    }
    if (scaled_down) return sync_rollout_status(d, *sets);

    if (deployment_complete(d, status_of(d))) {
      if (Status s = cleanup(d, *sets); !s.ok()) return s;
    }
    return sync_rollout_status(d, *sets);
  }

  // oldPodsRunning: old ReplicaSets report pods, or pods of theirs are not yet terminal.
  bool old_pods_running(const json& d, const ReplicaSets& sets, const std::vector<json>& rs_list) {
    if (actual_replica_count(sets.old_views()) > 0) return true;
    const json* sel = cc::find_path(d, {"spec", "selector"});
    auto selector = LabelSelector::from_json(sel != nullptr ? *sel : json());
    std::string new_uid = sets.new_rs ? cc::uid_of(*sets.new_rs) : "";
    for (const json& rs : rs_list) {
      std::string uid = cc::uid_of(rs);
      if (uid == new_uid) continue;
      for (const ObjectPtr& pod : pod_informer->by_index(cc::kControllerUidIndex, uid)) {
        if (cc::namespace_of(*pod) != cc::namespace_of(d)) continue;
        if (selector.ok() && !selector->matches_json(labels_json(*pod))) continue;
        std::string phase = cc::string_at(*pod, {"status", "phase"});
        if (phase == "Failed" || phase == "Succeeded") continue;
        return true;  // Unknown included: it may still be running
      }
    }
    return false;
  }

  Status rollout_recreate(json& d, std::vector<json>& rs_list) {
    // No new ReplicaSet yet: it must not scale up before the old ones are down.
    auto sets = all_replica_sets(d, rs_list, false);
    if (!sets.ok()) return sets.status();
    bool scaled_down = false;
    for (const ScaleStep& step : plan_recreate_scale_down(sets->old_views())) {
      bool scaled = false;
      if (Status s = apply(*sets, step, d, StepMode::kResize, &scaled); !s.ok()) return s;
      scaled_down = scaled_down || scaled;
    }
    if (scaled_down) return sync_rollout_status(d, *sets);
    if (old_pods_running(d, *sets, rs_list)) return sync_rollout_status(d, *sets);

    if (!sets->new_rs) {
      sets = all_replica_sets(d, rs_list, true);
      if (!sets.ok()) return sets.status();
      if (!sets->new_rs) return Status::Internal("no new replica set after creating it");
    }
    int32_t replicas = DeploymentView::from_json(d).replicas;
    if (Status s = scale_and_record(*sets->new_rs, replicas, d, nullptr); !s.ok()) return s;
    if (deployment_complete(d, status_of(d))) {
      if (Status s = cleanup(d, *sets); !s.ok()) return s;
    }
    return sync_rollout_status(d, *sets);
  }

  // updateDeploymentAndClearRollbackTo.
  Status clear_rollback_to(json& d) {
    annotations_of(d).erase(std::string(kDeprecatedRollbackToAnnotation));
    auto updated = ctx.client.update(deployments(d), d);
    return updated.ok() ? Status::Ok() : updated.status();
  }

  // rollback: the deprecated server-side rollback, through its annotation.
  Status rollback(json& d, std::vector<json>& rs_list) {
    auto sets = all_replica_sets(d, rs_list, true);
    if (!sets.ok()) return sets.status();
    std::vector<ReplicaSetView> all = sets->all_views();
    int64_t revision = rollback_to(d).value_or(0);
    if (revision == 0) {
      revision = last_revision(all);
      if (revision == 0) {
        record(d, "Warning", "DeploymentRollbackRevisionNotFound", "Unable to find last revision.");
        return clear_rollback_to(d);
      }
    }
    std::vector<json> candidates = sets->old_rss;
    if (sets->new_rs) candidates.push_back(*sets->new_rs);
    for (const json& rs : candidates) {
      ReplicaSetView v = ReplicaSetView::from_json(rs);
      if (v.revision_invalid || v.revision != revision) continue;
      if (cc::equal_ignore_hash(template_of(d), template_of(rs))) {
        record(d, "Warning", "DeploymentRollbackTemplateUnchanged",
               "The rollback revision contains the same template as current deployment \"" +
                   cc::name_of(d) + "\"");
        return clear_rollback_to(d);
      }
      json tmpl = template_of(rs);
      if (tmpl.contains("metadata") && tmpl["metadata"].contains("labels")) {
        tmpl["metadata"]["labels"].erase(std::string(cc::kPodTemplateHashLabel));
      }
      d["spec"]["template"] = std::move(tmpl);
      set_deployment_annotations_to(d, rs);
      Status s = clear_rollback_to(d);
      if (s.ok()) {
        record(d, "Normal", "DeploymentRollback",
               "Rolled back deployment \"" + cc::name_of(d) + "\" to revision " +
                   std::to_string(revision));
      }
      return s;
    }
    record(d, "Warning", "DeploymentRollbackRevisionNotFound",
           "Unable to find the revision to rollback to.");
    return clear_rollback_to(d);
  }

  // --- reconcile -----------------------------------------------------------------------------

  Status sync(const std::string& key) {
    std::string ns;
    std::string name;
    client::split_key(key, &ns, &name);
    ObjectPtr cached = d_informer->get(ns, name);
    if (!cached) return Status::Ok();  // deleted; its ReplicaSets go with the garbage collector
    json d = *cached;

    // An empty selector would take every pod of the namespace: refuse it.
    const json* sel = cc::find_path(d, {"spec", "selector"});
    if (sel != nullptr && sel->is_object() && cc::semantic_normalize(*sel).empty()) {
      record(d, "Warning", "SelectingAll",
             "This deployment is selecting all pods. A non-empty selector is required.");
      if (cc::int_at(status_of(d), {"observedGeneration"}) < cc::generation_of(d)) {
        status_of(d)["observedGeneration"] = cc::generation_of(d);
        return update_status(d);
      }
      return Status::Ok();
    }

    auto rs_list = claim_replica_sets(d);
    if (!rs_list.ok()) return rs_list.status();

    if (cc::being_deleted(d)) {
      auto sets = all_replica_sets(d, *rs_list, false);
      if (!sets.ok()) return sets.status();
      return sync_deployment_status(d, *sets);
    }
    if (Status s = check_paused_conditions(d); !s.ok()) return s;
    if (cc::bool_at(d, {"spec", "paused"})) return sync_scaling(d, *rs_list);
    if (rollback_to(d)) return rollback(d, *rs_list);

    {
      auto sets = all_replica_sets(d, *rs_list, false);
      if (!sets.ok()) return sets.status();
      std::optional<ReplicaSetView> nv = sets->new_view();
      if (is_scaling_event(DeploymentView::from_json(d), nv ? &*nv : nullptr, sets->old_views())) {
        return sync_scaling(d, *rs_list);
      }
    }
    switch (DeploymentView::from_json(d).strategy) {
      case StrategyType::kRecreate:
        return rollout_recreate(d, *rs_list);
      case StrategyType::kRollingUpdate:
        return rollout_rolling(d, *rs_list);
      case StrategyType::kUnknown:
        break;
    }
    return Status::BadRequest("unexpected deployment strategy type: " +
                              cc::string_at(d, {"spec", "strategy", "type"}));
  }

  // Constant after setup().
  ControllerContext& ctx;
  WorkQueue* queue = nullptr;
  client::Informer* d_informer = nullptr;
  client::Informer* rs_informer = nullptr;
  client::Informer* pod_informer = nullptr;
};

DeploymentController::DeploymentController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

DeploymentController::~DeploymentController() = default;

void DeploymentController::setup(WorkQueue& queue) {
  Impl& m = *impl_;
  m.queue = &queue;
  m.d_informer = &m.ctx.informers.informer(client::resources::kDeployments);
  m.rs_informer = &m.ctx.informers.informer(client::resources::kReplicaSets);
  m.pod_informer = &m.ctx.informers.informer(client::resources::kPods);
  cc::add_controller_uid_index(*m.rs_informer);
  cc::add_controller_uid_index(*m.pod_informer);
  m.d_informer->add_handlers(
      client::InformerHandlers{[&m](const ObjectPtr& d) { m.enqueue(*d); },
                               [&m](const ObjectPtr&, const ObjectPtr& cur) { m.enqueue(*cur); },
                               [&m](const ObjectPtr& d) { m.enqueue(*d); }});
  m.rs_informer->add_handlers(client::InformerHandlers{
      [&m](const ObjectPtr& rs) { m.on_rs_add(rs); },
      [&m](const ObjectPtr& old_rs, const ObjectPtr& cur_rs) { m.on_rs_update(old_rs, cur_rs); },
      [&m](const ObjectPtr& rs) { m.on_rs_delete(rs); }});
  m.pod_informer->add_handlers(client::InformerHandlers{
      nullptr, nullptr, [&m](const ObjectPtr& pod) { m.on_pod_delete(pod); }});
}

Status DeploymentController::reconcile(const std::string& key) { return impl_->sync(key); }

}  // namespace skiff::controllers::deployment

SKIFF_REGISTER_CONTROLLER(deployment, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::deployment::DeploymentController>(ctx);
});
